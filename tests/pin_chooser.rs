//! The chooser page under attack: only a pupil known for this parent can be pinned
//! (T06), a pin needs a POST with this session's CSRF token from this very origin (T43),
//! a bad cookie is no session (T39), and the session id rotates at each ticket redirect
//! so a cookie planted before login sees nothing of the victim (T44). Every refusal
//! leaves the state unchanged and logs a `pin_refused` event with its stable code.

use crate::pin_support;

use bonenfant::config::PinMode;
use bonenfant::events::capture::{self, Captured};
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::sim::{EntOptions, Pick};
use http::{Method, StatusCode};
use pin_support::{child_field, form, hidden, Answer, Jar, Stack};
use url::Url;

const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
const JULIEN: (&str, &str) = ("julien.durand", "demo-julien");
const COLLEGE: &str = "0330101A";

fn key(uai: &str, id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse(uai).expect("UAI"),
        eleve_id: id.to_owned(),
    }
}

/// Julien's children, both at the same collège: the chooser is asked.
fn chloe() -> PupilKey {
    key(COLLEGE, "837003")
}
fn lucas() -> PupilKey {
    key(COLLEGE, "837004")
}
/// Claire's daughter, at the same collège: another family's child.
fn lea() -> PupilKey {
    key(COLLEGE, "837001")
}

async fn start() -> Stack {
    start_with(pin_support::fixture_directory()).await
}

async fn start_with(directory: std::sync::Arc<bonenfant::sim::Directory>) -> Stack {
    Stack::start(
        directory,
        EntOptions {
            pick: Pick::Random,
            ..EntOptions::ose_random(3)
        },
        PinMode::Retry,
        |raw| raw.retry_max = Some(32),
    )
    .await
}

/// Julien logs in in a fresh browser and ends on the chooser page.
async fn julien_on_the_chooser(stack: &Stack) -> (Jar, Url, Vec<(String, String)>) {
    let mut jar = Jar::new();
    let page = jar
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    let (action, fields) = form(&page, "csrf").expect("the chooser page");
    (jar, action, fields)
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn codes(captured: &Captured) -> Vec<String> {
    captured
        .named("pin_refused")
        .iter()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect()
}

/// What the session's chooser page says is pinned (no pin: no child marked).
async fn pinned(stack: &Stack, jar: &mut Jar) -> bool {
    let page = jar
        .get(&stack.chooser_url(&stack.pronote_page(COLLEGE)))
        .await;
    page.body.contains("aria-current=\"true\"")
}

fn assert_refused(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.location.is_none(), "a refusal sends nobody anywhere");
}

#[tokio::test(flavor = "current_thread")]
async fn pin_of_a_child_never_asserted_for_this_parent_is_refused() {
    let (captured, _guard) = capture::capture();
    let stack = start().await;
    let (mut jar, action, fields) = julien_on_the_chooser(&stack).await;
    let csrf = hidden(&fields, "csrf").expect("csrf");
    for stranger in [lea(), key(COLLEGE, "999999"), key("0330202B", "837005")] {
        let mut forged = fields.clone();
        forged.push(child_field(&csrf, &stranger));
        let answer = jar
            .post(&action, &forged, Some(&origin(&action)), None)
            .await;
        assert_refused(&answer, StatusCode::FORBIDDEN);
        assert!(answer.body.contains("pin.unknown_child"));
    }
    assert_eq!(codes(&captured), vec!["pin.unknown_child"; 3]);
    assert!(!pinned(&stack, &mut jar).await, "state unchanged");
    assert!(captured.named("pin_set").is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn pin_post_without_this_sessions_token_or_origin_is_refused() {
    let (captured, _guard) = capture::capture();
    let stack = start().await;
    let (mut jar, action, fields) = julien_on_the_chooser(&stack).await;
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let good_child = child_field(&csrf, &chloe());
    let same_origin = origin(&action);
    let with = |fields: &[(String, String)], extra: &[(String, String)]| {
        let mut all = fields.to_vec();
        all.extend_from_slice(extra);
        all
    };
    // Another session's token (the attacker's own chooser page).
    let (_, _, other_fields) = julien_on_the_chooser(&stack).await;
    let other_csrf = hidden(&other_fields, "csrf").expect("csrf");
    assert_ne!(other_csrf, csrf);
    let without_csrf: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let mut wrong_csrf = without_csrf.clone();
    wrong_csrf.push(("csrf".to_owned(), other_csrf.clone()));

    let cases: Vec<(&str, Answer, StatusCode)> = vec![
        (
            "no token",
            jar.post(
                &action,
                &with(&without_csrf, std::slice::from_ref(&good_child)),
                Some(&same_origin),
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "another session's token",
            jar.post(
                &action,
                &with(&wrong_csrf, std::slice::from_ref(&good_child)),
                Some(&same_origin),
                None,
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            "a child token from another session",
            jar.post(
                &action,
                &with(&fields, &[child_field(&other_csrf, &chloe())]),
                Some(&same_origin),
                None,
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            "cross origin",
            jar.post(
                &action,
                &with(&fields, std::slice::from_ref(&good_child)),
                Some("https://evil.example"),
                None,
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            "cross-site referer, no origin",
            jar.post(
                &action,
                &with(&fields, std::slice::from_ref(&good_child)),
                None,
                Some("https://evil.example/page"),
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            "neither origin nor referer",
            jar.post(
                &action,
                &with(&fields, std::slice::from_ref(&good_child)),
                None,
                None,
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            "a repeated child field",
            jar.post(
                &action,
                &with(&fields, &[good_child.clone(), child_field(&csrf, &lucas())]),
                Some(&same_origin),
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (name, answer, status) in &cases {
        assert_eq!(answer.status, *status, "{name}: {}", answer.body);
        assert!(answer.location.is_none(), "{name}");
    }
    // A pin is never made by GET (a link or an image on another site), nor by PUT.
    let mut as_get = action.clone();
    as_get
        .query_pairs_mut()
        .extend_pairs(with(&fields, std::slice::from_ref(&good_child)));
    let got = jar.send(Method::GET, &as_get, None, &[]).await;
    assert_eq!(got.status, StatusCode::OK, "GET only shows the page");
    let put = jar
        .send(
            Method::PUT,
            &action,
            Some(String::new()),
            &[(http::header::ORIGIN, same_origin.clone())],
        )
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!pinned(&stack, &mut jar).await, "state unchanged");
    assert!(captured.named("pin_set").is_empty());
    assert_eq!(
        codes(&captured),
        [
            "pin.form_missing_field",
            "pin.csrf",
            "pin.unknown_child",
            "pin.origin",
            "pin.origin",
            "pin.origin",
            "pin.form_repeated_field",
            "pin.method",
        ]
    );

    // The same form, posted as the page posts it, pins and sends the parent on.
    let answer = jar
        .post(
            &action,
            &with(&fields, &[good_child]),
            Some(&same_origin),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.sends_on(), "{}", answer.body);
    assert!(pinned(&stack, &mut jar).await);
    assert_eq!(captured.named("pin_set").len(), 1);
    // A same-origin Referer stands in for a missing Origin (older browsers).
    let answer = jar
        .post(
            &action,
            &with(&fields, &[child_field(&csrf, &lucas())]),
            None,
            Some(&format!("{same_origin}/bonenfant/choose")),
        )
        .await;
    assert!(answer.sends_on());
    stack.stop().await;
}

/// T39: a cookie that does not open is no session, whatever else the request carries.
#[tokio::test(flavor = "current_thread")]
async fn pin_with_a_tampered_cookie_is_no_session() {
    let (captured, _guard) = capture::capture();
    let stack = start().await;
    let (mut jar, action, fields) = julien_on_the_chooser(&stack).await;
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let mut all = fields.clone();
    all.push(child_field(&csrf, &chloe()));
    let value = jar.session_cookie().expect("cookie");
    let flipped: String = value
        .char_indices()
        .map(|(i, c)| match (i == value.len() / 2, c) {
            (true, 'A') => 'B',
            (true, _) => 'A',
            (false, c) => c,
        })
        .collect();
    for tampered in [flipped, value[..value.len() / 2].to_owned(), String::new()] {
        let mut forged = Jar::new();
        forged
            .cookies
            .insert(pin_support::SESSION_COOKIE.to_owned(), tampered);
        let answer = forged
            .post(&action, &all, Some(&origin(&action)), None)
            .await;
        assert_refused(&answer, StatusCode::BAD_REQUEST);
        let page = forged
            .get(&stack.chooser_url(&stack.pronote_page(COLLEGE)))
            .await;
        assert!(!page.body.contains("Chlo") && !page.body.contains("Lucas"));
    }
    assert_eq!(codes(&captured), vec!["pin.no_session"; 3]);
    assert!(!pinned(&stack, &mut jar).await);
    stack.stop().await;
}

/// T44: an attacker's own bonenfant cookie planted in the victim's browser before the
/// victim logs in. The ticket redirect rotates the session: the planted cookie sees
/// none of the victim's children and cannot pin for them; and each later login rotates
/// again, so an old cookie value is worth nothing.
#[tokio::test(flavor = "current_thread")]
async fn session_rotates_at_each_ticket_redirect_so_a_planted_cookie_sees_nothing() {
    let (captured, _guard) = capture::capture();
    let stack = start().await;
    let chooser = stack.chooser_url(&stack.pronote_page(COLLEGE));
    let mut attacker = Jar::new();
    attacker
        .login(&stack.pronote_page(COLLEGE), CLAIRE.0, CLAIRE.1)
        .await;
    let planted = attacker.session_cookie().expect("the attacker's cookie");
    let attacker_page = attacker.get(&chooser).await;
    let (_, attacker_fields) = form(&attacker_page, "csrf").expect("the attacker's chooser");
    let attacker_csrf = hidden(&attacker_fields, "csrf").expect("csrf");

    let mut victim = Jar::new();
    victim
        .cookies
        .insert(pin_support::SESSION_COOKIE.to_owned(), planted.clone());
    let page = victim
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    let (action, fields) = form(&page, "csrf").expect("the victim's chooser");
    assert!(page.body.contains("Chlo"), "the victim sees their children");
    assert_ne!(victim.session_cookie().as_deref(), Some(planted.as_str()));
    assert_ne!(
        hidden(&fields, "csrf"),
        Some(attacker_csrf.clone()),
        "CSRF token rotated"
    );

    // The attacker, with the planted value, sees nothing of the victim's…
    let seen = attacker.get(&chooser).await;
    assert!(
        !seen.body.contains("Chlo") && !seen.body.contains("Lucas"),
        "{}",
        seen.body
    );
    assert!(form(&seen, "csrf").is_none(), "no child to offer");
    // …and cannot pin one of them, with any token they know.
    let mut forged = attacker_fields.clone();
    forged.push(child_field(&attacker_csrf, &chloe()));
    let answer = attacker
        .post(&action, &forged, Some(&origin(&action)), None)
        .await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert!(captured.named("pin_set").is_empty());

    // The victim pins and lands; each ticket redirect rotates again.
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let mut all = fields.clone();
    all.push(child_field(&csrf, &chloe()));
    let before_landing = victim.session_cookie().expect("cookie");
    let chosen = victim
        .post(&action, &all, Some(&origin(&action)), None)
        .await;
    assert!(chosen.sends_on());
    let landed = victim.get(&chosen.location.expect("to Pronote")).await;
    assert_eq!(
        pin_support::shown(&landed).and_then(|p| p.key()),
        Some(chloe())
    );
    let after_landing = victim.session_cookie().expect("cookie");
    let mut old = Jar::new();
    old.cookies
        .insert(pin_support::SESSION_COOKIE.to_owned(), before_landing);
    let stale = old.get(&chooser).await;
    assert!(
        !stale.body.contains("Chlo"),
        "the value before the last login lost the session"
    );
    let mut current = Jar::new();
    current
        .cookies
        .insert(pin_support::SESSION_COOKIE.to_owned(), after_landing);
    assert!(current
        .get(&chooser)
        .await
        .body
        .contains("aria-current=\"true\""));
    stack.stop().await;
}

/// The page offers this parent's children of the service's establishment by first name
/// and class, nothing more: no identifier, no INE, no family name, no other family's
/// child, and a plain form that works without JavaScript.
#[tokio::test(flavor = "current_thread")]
async fn chooser_lists_only_this_parents_children_by_first_name_and_class() {
    let (_captured, _guard) = capture::capture();
    let stack = start().await;
    let (mut jar, action, fields) = julien_on_the_chooser(&stack).await;
    let page = jar
        .get(&stack.chooser_url(&stack.pronote_page(COLLEGE)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for child in ["Chloé", "Lucas"] {
        assert!(
            page.body
                .contains(&format!("<span class=\"name\">{child}</span>")),
            "{}",
            page.body
        );
    }
    for detail in [
        "Classe de 3C · Collège Jean Moulin (Pessac)",
        "Classe de 5A · Collège Jean Moulin (Pessac)",
    ] {
        assert!(page.body.contains(detail), "{}", page.body);
    }
    assert!(
        page.body.find("Chloé") < page.body.find("Lucas"),
        "children by first name"
    );
    assert_eq!(page.body.matches("name=\"child\"").count(), 2);
    for secret in [
        "837003",
        "837004",
        "SIM0000003C",
        "DURAND",
        "Léa",
        "<script",
    ] {
        assert!(!page.body.contains(secret), "{secret} on the page");
    }
    assert!(page.body.contains("<html lang=\"fr\">"));
    assert!(page.body.contains("<meta name=\"viewport\""));
    assert!(page.body.contains("Retour à l'ENT"));
    assert_eq!(action.path(), "/bonenfant/choose");
    assert!(hidden(&fields, "service").is_some_and(|s| s.contains("/0330101a/pronote/")));
    stack.stop().await;
}

/// Names come from the ENT's directory, which bonenfant does not control: a first name
/// or class carrying markup shows as text and leaves the form as it was.
#[tokio::test(flavor = "current_thread")]
async fn chooser_shows_hostile_first_names_and_classes_as_text() {
    let (_captured, _guard) = capture::capture();
    let mut data = pin_support::fixture_directory().data().clone();
    for pupil in &mut data.pupils {
        match pupil.eleve_id.as_str() {
            "837003" => {
                pupil.first_name = "<script>alert(1)</script>".to_owned();
                pupil.class = "\"><img src=x onerror=alert(1)>".to_owned();
            }
            "837004" => pupil.first_name = "O'Brien & <b>Fils</b>".to_owned(),
            _ => {}
        }
    }
    let stack = start_with(pin_support::directory(data)).await;
    let (mut jar, _, _) = julien_on_the_chooser(&stack).await;
    let page = jar
        .get(&stack.chooser_url(&stack.pronote_page(COLLEGE)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;</span><span class=\"detail\">Classe de &quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
        "O'Brien &amp; &lt;b&gt;Fils&lt;/b&gt;</span><span class=\"detail\">Classe de 5A",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    for injected in ["<script", "<img", "<b>"] {
        assert!(!page.body.contains(injected), "{injected}: {}", page.body);
    }
    assert_eq!(page.body.matches("name=\"child\"").count(), 2);
    let (_, fields) = form(&page, "csrf").expect("the chooser form");
    let mut names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["csrf", "service"], "no field injected");
    stack.stop().await;
}

/// The chooser's `service` comes from its URL, so anyone can link to the page with any
/// value: it is reflected only inside the hidden field, escaped, and posted back as is.
#[tokio::test(flavor = "current_thread")]
async fn chooser_keeps_a_hostile_service_url_inside_its_hidden_field() {
    let (_captured, _guard) = capture::capture();
    let stack = start().await;
    let (mut jar, _, _) = julien_on_the_chooser(&stack).await;
    for hostile in [
        "\"><script>alert(1)</script>",
        "https://x/\" autofocus onfocus=\"alert(1)",
        "javascript:alert(document.cookie)",
        "https://x/?a='1'&b=<2>",
    ] {
        let mut url = stack.proxy_url("/bonenfant/choose");
        url.query_pairs_mut().append_pair("service", hostile);
        let page = jar.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{hostile}");
        assert!(!page.body.contains("<script"), "{}", page.body);
        let (action, fields) = form(&page, "csrf").expect("the chooser form");
        assert_eq!(action.path(), "/bonenfant/choose");
        assert_eq!(hidden(&fields, "service").as_deref(), Some(hostile));
        assert_eq!(fields.len(), 2, "{fields:?}");
    }
    stack.stop().await;
}

/// Regression: behind a TLS-terminating load balancer (bonenfant listening in plain
/// HTTP), the session cookie lost `Secure` and `__Host-`, and with them the fixation
/// and cookie-tossing defences. `--public-scheme https` keeps them, and the pin POST
/// must then come from the https origin.
#[tokio::test(flavor = "current_thread")]
async fn cookie_behind_a_tls_terminator_keeps_host_prefix_and_secure() {
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Random,
            ..EntOptions::ose_random(3)
        },
        PinMode::Retry,
        |raw| {
            raw.retry_max = Some(32);
            raw.public_scheme = Some(bonenfant::config::PublicScheme::Https);
        },
    )
    .await;
    let mut jar = Jar::new();
    let page = jar
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    assert!(
        jar.cookies
            .contains_key(bonenfant::session::cookie::SECURE_NAME),
        "{:?}",
        jar.cookies.keys().collect::<Vec<_>>()
    );
    assert!(!jar.cookies.contains_key(pin_support::SESSION_COOKIE));
    // The test client speaks plain HTTP to the load balancer's back end; the browser's
    // origin is the https one.
    let (action, fields) = form(&page, "csrf").expect("the chooser page");
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let mut good = fields.clone();
    good.push(child_field(&csrf, &chloe()));
    let http_origin = origin(&action);
    let https_origin = http_origin.replacen("http://", "https://", 1);
    let refused = jar.post(&action, &good, Some(&http_origin), None).await;
    assert_refused(&refused, StatusCode::FORBIDDEN);
    let accepted = jar.post(&action, &good, Some(&https_origin), None).await;
    assert!(accepted.sends_on(), "{}", accepted.body);
    stack.stop().await;
}

/// Issue 11, finding 6 (T43): the Origin check compared the host and port but not the
/// scheme, so a page served over plain HTTP (which a network attacker can forge) could
/// post a pin for an `https` session, and the reverse. Through a real proxy, on the
/// chooser POST with this session's token and a good child: an `https://` Origin (or
/// Referer) on an `http` listener is refused, and an `http://` one where the public
/// scheme is `https` (behind a TLS terminator); the same origin with the right scheme
/// pins.
#[tokio::test(flavor = "current_thread")]
async fn pin_post_from_an_origin_of_the_other_scheme_is_refused() {
    let (captured, _guard) = capture::capture();
    for public_https in [false, true] {
        let stack = Stack::start(
            pin_support::fixture_directory(),
            EntOptions {
                pick: Pick::Random,
                ..EntOptions::ose_random(3)
            },
            PinMode::Retry,
            |raw| {
                raw.retry_max = Some(32);
                if public_https {
                    raw.public_scheme = Some(bonenfant::config::PublicScheme::Https);
                }
            },
        )
        .await;
        let (mut jar, action, fields) = julien_on_the_chooser(&stack).await;
        let csrf = hidden(&fields, "csrf").expect("csrf");
        let mut good = fields.clone();
        good.push(child_field(&csrf, &chloe()));
        // The test speaks plain HTTP to the listener; the browser's origin is the
        // public scheme's, on the same host and port.
        let http_origin = origin(&action);
        let https_origin = http_origin.replacen("http://", "https://", 1);
        let (ours, other) = if public_https {
            (https_origin, http_origin)
        } else {
            (http_origin, https_origin)
        };
        let refused_before = codes(&captured).len();
        let by_origin = jar.post(&action, &good, Some(&other), None).await;
        assert_refused(&by_origin, StatusCode::FORBIDDEN);
        let by_referer = jar
            .post(
                &action,
                &good,
                None,
                Some(&format!("{other}/bonenfant/choose")),
            )
            .await;
        assert_refused(&by_referer, StatusCode::FORBIDDEN);
        assert_eq!(
            codes(&captured)[refused_before..],
            ["pin.origin", "pin.origin"],
            "public https: {public_https}"
        );
        assert!(!pinned(&stack, &mut jar).await, "state unchanged");
        let accepted = jar.post(&action, &good, Some(&ours), None).await;
        assert!(accepted.sends_on(), "{}", accepted.body);
        stack.stop().await;
    }
    assert_eq!(captured.named("pin_set").len(), 2);
}

/// Julien's chooser, bonenfant without a directory: it knows only what the ENT asserted,
/// and this ENT names both children in each assertion (in random order), with the
/// designated one's class when `asserts_class`.
async fn julien_without_a_directory(
    child_names_in_vectors: bool,
    asserts_class: bool,
) -> (Stack, Answer) {
    let stack = Stack::start_without_index(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Shuffled,
            child_names_in_vectors,
            asserts_class,
            ..EntOptions::ose_random(3)
        },
        PinMode::Retry,
        |raw| raw.retry_max = Some(32),
    )
    .await;
    let mut jar = Jar::new();
    jar.login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    let page = jar
        .get(&stack.chooser_url(&stack.pronote_page(COLLEGE)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    (stack, page)
}

/// Issue 10, failure 2: without `--directory` the chooser read "Enfant n°1", "Enfant
/// n°2", the first names in session state always `null`. An ENT that writes each
/// child's first name in a parent's FrEduVecteur values (`2|DURAND|Chloé|…`) has them
/// shown, in a stable order, whatever order the ENT sent them in.
#[tokio::test(flavor = "current_thread")]
async fn chooser_names_children_without_a_directory() {
    let (_captured, _guard) = capture::capture();
    let (stack, page) = julien_without_a_directory(true, false).await;
    let names: Vec<&str> = page
        .body
        .split("<span class=\"name\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .collect();
    assert_eq!(names, ["Chloé", "Lucas"], "{}", page.body);
    assert!(!page.body.contains("Enfant n°"));
    stack.stop().await;
}

/// Issue 10, item 4: without `--directory`, the class the ENT asserted for the child
/// it designated (`ENTEleveClasses`) shows beside that child's first name, and only
/// beside that child's.
#[tokio::test(flavor = "current_thread")]
async fn chooser_shows_the_class_the_ent_asserted_without_a_directory() {
    let (_captured, _guard) = capture::capture();
    let (stack, page) = julien_without_a_directory(true, true).await;
    let parent = stack.directory.parent(JULIEN.0).expect("Julien");
    let classes: Vec<String> = stack
        .directory
        .children_of(parent)
        .map(|child| child.class.clone())
        .collect();
    assert_eq!(classes.len(), 2);
    let shown = classes
        .iter()
        .filter(|class| page.body.contains(&format!("Classe de {class}<")))
        .count();
    assert_eq!(shown, 1, "the designated child's class only: {}", page.body);
    stack.stop().await;
}

/// The national chain and entcore write the *parent's* names in each FrEduVecteur
/// value (`2|DURAND|Julien|837003|…`, `2|DURAND|Julien|837004|…`): the chooser must not
/// call every child "Julien". Without a directory, it numbers them.
#[tokio::test(flavor = "current_thread")]
async fn chooser_never_names_a_child_after_the_parent() {
    let (_captured, _guard) = capture::capture();
    let (stack, page) = julien_without_a_directory(false, false).await;
    assert!(!page.body.contains("Julien"), "{}", page.body);
    assert!(page.body.contains("<span class=\"name\">Enfant n°1</span>"));
    assert!(page.body.contains("<span class=\"name\">Enfant n°2</span>"));
    stack.stop().await;
}
