<?php
/*
 * A phpCAS-protected service for bonenfant's interop check (tests/interop/phpcas.sh),
 * run as the router script of `php -S 127.0.0.1:PORT`. A Pronote stand-in: the UAI of
 * the establishment is the first path segment, like the simulators' service URLs.
 *
 *   /{uai}/pronote/{route}-{mode}/parent.html   phpCAS::forceAuthentication(), then
 *                                               {"user", "attributes", ...} as JSON
 *   /{uai}/pronote/{route}-{mode}/renew.html    the same with renewAuthentication()
 *                                               (renew=true on /login and validation)
 *   /{uai}/pronote/{route}-{mode}/gateway.html  the same with checkAuthentication()
 *                                               (gateway=true; "user": null if none)
 *   /{uai}/pronote/{route}-{mode}/logout        phpCAS::logout(): local session gone,
 *                                               browser sent to the CAS /logout
 *
 * {route} names the CAS server (`direct`: the sim ENT over http, no bonenfant;
 * `observe`, `retry`: bonenfant over https, trusting the test CA; `backchannel`: login
 * and logout at the sim ENT, validation through bonenfant; `untrusted`: bonenfant, but
 * trusting another CA than the test CA's); {mode} the protocol
 * (`cas1`: CAS_VERSION_1_0, /validate; `cas2`: CAS_VERSION_2_0, /serviceValidate; `cas3`:
 * CAS_VERSION_3_0, /p3/serviceValidate; `saml`: SAML_VERSION_1_1, /samlValidate).
 * Single logout (the ENT's logoutRequest POST to the service URL) is handled by
 * phpCAS::handleLogoutRequests(false); each one handled appends a line to the file
 * the configuration names (route, mode, and whether a ticket was named — never the ticket).
 *
 * Configuration: the JSON file named by the PHPCAS_INTEROP_CONFIG environment variable
 * ({"self": base URL, "ca": CA file, "slo_log": file, "servers": {route: {...}}}).
 * Nothing here prints a ticket: failures answer the phpCAS reason lines only, redacted.
 */

require_once 'CAS.php';

const VERSIONS = [
    'cas1' => CAS_VERSION_1_0,
    'cas2' => CAS_VERSION_2_0,
    'cas3' => CAS_VERSION_3_0,
    'saml' => SAML_VERSION_1_1,
];
const TICKET = '/\b(?:ST|PT|PGT|PGTIOU|TGT|TGC|LT)-[A-Za-z0-9.-]+/';

function reply(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json; charset=utf-8');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
}

$config = json_decode((string) file_get_contents((string) getenv('PHPCAS_INTEROP_CONFIG')), true);
if (!is_array($config)) {
    reply(500, ['error' => 'no configuration (PHPCAS_INTEROP_CONFIG)']);
    return true;
}

$path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/healthz') {
    reply(200, ['phpcas' => phpCAS::getVersion(), 'php' => PHP_VERSION]);
    return true;
}
$page = '#^/(?P<uai>\d{7}[a-z])/pronote/(?P<route>[a-z]+)-(?P<mode>cas1|cas2|cas3|saml)/(?P<page>parent|renew|gateway|logout)(?:\.html)?$#';
if (!preg_match($page, $path, $match) || !isset($config['servers'][$match['route']])) {
    reply(404, ['error' => 'no such page']);
    return true;
}
$route = $match['route'];
$mode = $match['mode'];
$server = $config['servers'][$route];

// One session cookie per route, protocol and way of authenticating (the logout page
// ends the parent page's session), so that one browser can hold several services'
// sessions (the single-logout check logs in to two of them).
$kind = in_array($match['page'], ['renew', 'gateway'], true) ? '_' . $match['page'] : '';
session_name('PHPCAS_' . strtoupper($route . '_' . $mode . $kind));
session_save_path($config['sessions']);

ob_start();
try {
    phpCAS::client(
        VERSIONS[$mode],
        $server['host'],
        (int) $server['port'],
        '/cas',
        $config['self']
    );
    if (isset($server['base_url'])) {
        // phpCAS builds https://host:port/cas/ itself; the direct route is the sim ENT's http.
        phpCAS::getCasClient()->setBaseURL($server['base_url']);
    }
    if (isset($server['login_base_url'])) {
        // Back channel only: the browser logs in at the ENT itself, only the validation
        // goes through bonenfant (`docs/domain.md`, "Deployments": back channel only).
        phpCAS::setServerLoginURL($server['login_base_url'] . 'login?service=' . urlencode(phpCAS::getServiceURL()));
        phpCAS::setServerLogoutURL($server['login_base_url'] . 'logout');
    }
    // A route may trust another CA (the check that phpCAS really verifies bonenfant's).
    phpCAS::setCasServerCACert($server['ca'] ?? $config['ca'], true);
    phpCAS::setSingleSignoutCallback(function ($ticket) use ($config, $route, $mode) {
        $named = preg_match(TICKET, (string) $ticket) ? 'ticket' : 'no-ticket';
        file_put_contents($config['slo_log'], "$route $mode $named\n", FILE_APPEND | LOCK_EX);
    });
    phpCAS::handleLogoutRequests(false);
    switch ($match['page']) {
        case 'logout':
            phpCAS::logout();
            break;
        case 'renew':
            // phpCAS 1.6.0's static renewAuthentication() returns nothing; it only comes
            // back once the user is authenticated (else it redirects and exits).
            phpCAS::renewAuthentication();
            $authenticated = true;
            break;
        case 'gateway':
            $authenticated = phpCAS::checkAuthentication();
            break;
        default:
            $authenticated = phpCAS::forceAuthentication();
    }
    $body = [
        'user' => $authenticated ? phpCAS::getUser() : null,
        // An object even when empty (json_encode writes an empty array as `[]`).
        'attributes' => (object) ($authenticated ? phpCAS::getAttributes() : []),
        'phpcas' => phpCAS::getVersion(),
        'route' => $route,
        'mode' => $mode,
    ];
    ob_end_clean();
    reply(200, $body);
} catch (CAS_AuthenticationException $error) {
    ob_end_clean();
    // The message lists the CAS URL (with the ticket) and the CAS response: keep the
    // failure and reason lines, redacted.
    $lines = preg_grep('/^(Authentication failure|Reason):/', explode("\n", $error->getMessage()));
    reply(502, ['error' => preg_replace(TICKET, '[ticket]', implode('; ', $lines))]);
}
return true;
