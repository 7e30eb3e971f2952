//! The retry strategy for a browser that speaks HTTP/2 to bonenfant (every current
//! browser does over TLS). HTTP/2 names the host in `:authority`, not in a `Host`
//! header; bonenfant's own requests to the ENT (early validation, server-side
//! re-rolls) must still carry it.

use crate::pin_support::{self, form, Answer, Stack};
use crate::support::client::https_client;
use crate::support::pki::TestPki;

use bonenfant::config::PinMode;
use bonenfant::events::capture;
use bonenfant::sim::EntOptions;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use url::Url;

/// Claire's son Hugo, alone at his collège: the ENT names Léa or Hugo at random.
const HUGO: (&str, &str) = ("0330202B", "837002");

/// Found in Chromium through bonenfant in front of django-cas-server: over HTTP/2 the
/// login's `Host` was missing, so every early validation failed locally
/// (`proxy.host_missing`), the browser got the ENT's ticket unchecked and Pronote a
/// failure. Here a login over HTTP/2 is checked and re-rolled like any other and its
/// ticket names the child meant.
#[tokio::test(flavor = "current_thread")]
async fn retry_checks_and_rerolls_a_login_made_over_http2() {
    let (captured, _guard) = capture::capture();
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("proxy", &["127.0.0.1"]);
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions::ose_random(5),
        PinMode::Retry,
        |raw| {
            raw.tls_cert = Some(cert);
            raw.tls_key = Some(key);
        },
    )
    .await;
    let client = https_client(pki.client_config(&[]), true);
    let origin = format!("https://127.0.0.1:{}", stack.proxy.addr.port());
    let mut login = Url::parse(&format!("{origin}/cas/login")).unwrap();
    login
        .query_pairs_mut()
        .append_pair("service", stack.pronote_page(HUGO.0).as_str());

    let request = Request::get(login.as_str())
        .body(Full::<Bytes>::default())
        .unwrap();
    let page = client.request(request).await.unwrap();
    assert_eq!(page.version(), Version::HTTP_2);
    let cookies: Vec<String> = page
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let body = page.into_body().collect().await.unwrap().to_bytes();
    let page = Answer {
        status: StatusCode::OK,
        location: None,
        body: String::from_utf8_lossy(&body).into_owned(),
        url: login.clone(),
    };
    let (action, mut fields) = form(&page, "password").expect("the ENT's login form");
    fields.retain(|(k, _)| k != "username" && k != "password");
    fields.push(("username".to_owned(), "claire.martin".to_owned()));
    fields.push(("password".to_owned(), "demo-claire".to_owned()));
    let credentials = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let mut post = Request::post(action.as_str())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ORIGIN, &origin);
    if !cookies.is_empty() {
        post = post.header(COOKIE, cookies.join("; "));
    }
    let answer = client
        .request(post.body(Full::new(Bytes::from(credentials))).unwrap())
        .await
        .unwrap();
    assert_eq!(answer.version(), Version::HTTP_2);
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let to = Url::parse(answer.headers()[LOCATION].to_str().unwrap()).unwrap();
    let ticket = to
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
        .expect("a ticket for Pronote");
    let issued = stack.ent.ent.ticket(&ticket).expect("the ENT's ticket");
    assert_eq!(
        (
            issued.picked[0].uai.as_str(),
            issued.picked[0].eleve_id.as_str()
        ),
        HUGO,
        "the ticket names the child meant"
    );
    let redirects = captured.named("login_redirect");
    assert_eq!(redirects.len(), 1);
    assert!(
        !redirects[0]["principal"].is_null(),
        "bonenfant read the ENT's answer: {}",
        redirects[0]
    );
    assert!(captured.named("retry").len() as u64 == redirects[0]["retries"].as_u64().unwrap());
    stack.stop().await;
}
