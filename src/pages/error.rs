//! The error page: the status, what it means for a parent (French, then English), and
//! the stable code an integrator looks up.

use http::StatusCode;
use maud::html;

use super::{document, Head};

/// The page for an error answer with `status` and stable `code`. Takes nothing from
/// the request, so it reflects no input.
pub fn error(status: StatusCode, code: &str) -> String {
    let (fr, en) = explanation(status);
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = html! {
        h1 { (title) }
        p { (fr) }
        p lang="en" { (en) }
        p { "Code : " code { (code) } }
    };
    document(
        &Head {
            title: &title,
            viewport: false,
            style: None,
        },
        body,
    )
}

fn explanation(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_GATEWAY => (
            "Le serveur d'authentification (ENT) n'a pas répondu correctement. Réessayez dans un instant.",
            "The authentication server (ENT) did not answer properly. Try again in a moment.",
        ),
        StatusCode::GATEWAY_TIMEOUT => (
            "Le serveur d'authentification (ENT) n'a pas répondu à temps. Réessayez dans un instant.",
            "The authentication server (ENT) did not answer in time. Try again in a moment.",
        ),
        StatusCode::INTERNAL_SERVER_ERROR => (
            "Erreur interne du proxy. Réessayez dans un instant.",
            "Internal error in the proxy. Try again in a moment.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Le service est momentanément surchargé. Réessayez dans un instant.",
            "The service is overloaded for a moment. Try again shortly.",
        ),
        _ => ("La requête a été refusée.", "The request was refused."),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    #[test]
    fn names_status_meaning_and_code() {
        let page = error(StatusCode::GATEWAY_TIMEOUT, "proxy.upstream_timeout");
        for part in [
            "<title>504 Gateway Timeout</title>",
            "<h1>504 Gateway Timeout</h1>",
            "<p>Le serveur d'authentification (ENT) n'a pas répondu à temps.",
            "<p lang=\"en\">The authentication server (ENT) did not answer in time.",
            "<p>Code : <code>proxy.upstream_timeout</code></p>",
        ] {
            assert!(page.contains(part), "{part}: {page}");
        }
    }

    #[test]
    fn hostile_code_is_text() {
        let reference = skeleton(&error(StatusCode::BAD_REQUEST, "pin.csrf"));
        for hostile in HOSTILE {
            let page = error(StatusCode::BAD_REQUEST, hostile);
            assert_eq!(skeleton(&page), reference, "{page}");
            assert!(page.contains(&format!("<code>{}</code>", escaped(hostile))));
        }
    }
}
