//! The error page: what happened in French words a parent understands, what to do next,
//! and the stable code an integrator looks up, in small print.

use http::StatusCode;
use maud::html;

use super::shell::{parent_page, Brand, ParentPage};

/// The page for an error answer with `status` and stable `code`. Takes nothing from
/// the request, so it reflects no input.
pub fn error(brand: &Brand, status: StatusCode, code: &str) -> String {
    let words = Words::of(status);
    let body = html! { p { (words.explanation) } };
    let reason = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let back = ("Retour à l'ENT", brand.ent_url.as_str());
    // A passing failure is worth another try (`""` reloads the page); a refusal is not.
    let actions: Vec<(&str, &str)> = if words.transient {
        vec![("Réessayer", ""), back]
    } else {
        vec![back]
    };
    parent_page(
        brand,
        &ParentPage {
            heading: words.heading,
            body: &body,
            actions: &actions,
            primary: true,
            code: Some((code, &reason)),
            refresh: None,
        },
    )
}

/// What an error page says for a status.
struct Words {
    heading: &'static str,
    explanation: &'static str,
    /// Trying again in a moment may work.
    transient: bool,
}

impl Words {
    fn of(status: StatusCode) -> Self {
        let (heading, explanation, transient) = match status {
            StatusCode::BAD_REQUEST => (
                "Demande incomplète",
                "Votre navigateur a envoyé une demande que nous ne pouvons pas traiter. \
                 Revenez à l'ENT et ouvrez Pronote de nouveau.",
                false,
            ),
            StatusCode::FORBIDDEN => (
                "Action refusée",
                "Cette page a expiré ou ne vient pas de l'ENT. Revenez à l'ENT et ouvrez \
                 Pronote de nouveau.",
                false,
            ),
            StatusCode::NOT_FOUND => (
                "Page introuvable",
                "Cette adresse ne correspond à aucune page. Revenez à l'ENT pour ouvrir Pronote.",
                false,
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "Action impossible",
                "Cette page ne s'utilise pas ainsi. Revenez à l'ENT pour ouvrir Pronote.",
                false,
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "Demande trop grande",
                "Votre navigateur a envoyé plus de données que nous n'en acceptons. Revenez à \
                 l'ENT et ouvrez Pronote de nouveau.",
                false,
            ),
            StatusCode::BAD_GATEWAY => (
                "L'ENT ne répond pas correctement",
                "Le serveur de connexion de l'ENT est indisponible pour le moment. \
                 Réessayez dans un instant.",
                true,
            ),
            StatusCode::GATEWAY_TIMEOUT => (
                "L'ENT ne répond pas",
                "Le serveur de connexion de l'ENT n'a pas répondu à temps. Réessayez dans un \
                 instant.",
                true,
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "Trop de connexions en ce moment",
                "Le service est momentanément surchargé. Réessayez dans un instant.",
                true,
            ),
            status if status.is_server_error() => (
                "Une erreur est survenue",
                "Une erreur imprévue nous empêche de continuer. Réessayez dans un instant.",
                true,
            ),
            _ => (
                "Demande refusée",
                "Nous ne pouvons pas donner suite à cette demande. Revenez à l'ENT pour \
                 ouvrir Pronote.",
                false,
            ),
        };
        Self {
            heading,
            explanation,
            transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    #[test]
    fn names_what_happened_what_to_do_and_the_code() {
        let page = error(
            &Brand::default(),
            StatusCode::GATEWAY_TIMEOUT,
            "proxy.upstream_timeout",
        );
        for part in [
            "<title>L'ENT ne répond pas — ENT</title>",
            "<meta name=\"viewport\"",
            "<h1>L'ENT ne répond pas</h1>",
            "<p>Le serveur de connexion de l'ENT n'a pas répondu à temps.",
            "<a href=\"\" class=\"primary\">Réessayer</a><a href=\"/\">Retour à l'ENT</a>",
            "<p class=\"code\">Code : <code>proxy.upstream_timeout</code> · 504 Gateway Timeout</p>",
        ] {
            assert!(page.contains(part), "{part}: {page}");
        }
    }

    #[test]
    fn every_status_a_parent_may_see_has_french_words_and_a_way_back() {
        for status in [400, 403, 404, 405, 413, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            let page = error(&Brand::default(), status, "x.y");
            assert!(page.contains("Retour à l'ENT"), "{status}");
            let transient = status.is_server_error();
            assert_eq!(page.contains(">Réessayer<"), transient, "{status}");
            assert!(
                !page.contains("Demande refusée"),
                "{status} has its own words"
            );
        }
    }

    #[test]
    fn hostile_code_is_text() {
        let reference = skeleton(&error(
            &Brand::default(),
            StatusCode::BAD_REQUEST,
            "pin.csrf",
        ));
        for hostile in HOSTILE {
            let page = error(&Brand::default(), StatusCode::BAD_REQUEST, hostile);
            assert_eq!(skeleton(&page), reference, "{page}");
            assert!(page.contains(&format!("<code>{}</code>", escaped(hostile))));
        }
    }
}
