//! The pages that end a control step: the retry loop gave up, a pin was noted, Pronote
//! opens for the chosen child.

use maud::html;

use super::local_href;
use super::shell::{parent_page, Brand, ParentPage};

/// Where the chooser page for `service` lives, under the control prefix.
pub fn chooser_href(control_prefix: &str, service: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("service", service)
        .finish();
    format!("{control_prefix}/choose?{query}")
}

/// What the give-up page offers. Each link is left out when absent or when it is not
/// a local path or an `http(s)` URL.
#[derive(Clone, Copy, Debug, Default)]
pub struct GiveUp<'a> {
    /// The child bonenfant was looking for, by first name, when known.
    pub child: Option<&'a str>,
    /// Another round of re-logins.
    pub retry_href: Option<&'a str>,
    /// On to Pronote with whichever child the ENT gives.
    pub continue_href: Option<&'a str>,
    /// The chooser page (see [`chooser_href`]).
    pub choose_href: Option<&'a str>,
}

/// The page a parent gets when the ENT kept naming another child until the retry
/// budget ran out.
pub fn give_up(brand: &Brand, offer: &GiveUp<'_>) -> String {
    let heading = match offer.child {
        Some(name) => format!("L'ENT n'a pas ouvert la session de {name}"),
        None => "L'ENT n'a pas ouvert la session de l'enfant attendu".to_owned(),
    };
    let body = html! {
        p { "Après plusieurs essais, l'ENT propose toujours un autre enfant." }
    };
    let mut actions = Vec::new();
    for (label, href) in [
        ("Réessayer", offer.retry_href.and_then(local_href)),
        (
            "Continuer vers Pronote quand même",
            offer.continue_href.and_then(local_href),
        ),
        (
            "Choisir un autre enfant",
            offer.choose_href.and_then(local_href),
        ),
    ] {
        if let Some(href) = href {
            actions.push((label, href));
        }
    }
    actions.push(("Retour à l'ENT", brand.ent_url.as_str()));
    parent_page(
        brand,
        &ParentPage {
            heading: &heading,
            body: &body,
            actions: &actions,
            primary: true,
            code: None,
            refresh: None,
        },
    )
}

/// The answer to a pin POST whose service is no redirect target: the pin holds for the
/// next login.
pub fn pin_noted(brand: &Brand) -> String {
    let body = html! {
        p { "Votre prochaine connexion à Pronote ouvrira l'espace de cet enfant." }
    };
    parent_page(
        brand,
        &ParentPage {
            heading: "C'est noté",
            body: &body,
            actions: &[("Retour à l'ENT", brand.ent_url.as_str())],
            primary: true,
            code: None,
            refresh: None,
        },
    )
}

/// The answer to a pin POST: Pronote opens at once. A 303 to Pronote's origin would be
/// a form submission redirected to another origin, which the chooser's `form-action
/// 'self'` blocks in browsers; a `<meta http-equiv="refresh">` starts a new navigation,
/// which no `form-action` governs, without JavaScript, and replaces this page in the
/// history (the back button leads to the chooser, not here). A link stays for a browser
/// that does not follow it. `service` must be a Pronote URL the caller checked.
pub fn opening(brand: &Brand, child: Option<&str>, service: &str) -> String {
    let body = html! {
        p {
            @match child {
                Some(name) => { "Pronote s'ouvre sur l'espace de " (name) "." }
                None => { "Pronote s'ouvre sur l'espace de l'enfant choisi." }
            }
        }
    };
    parent_page(
        brand,
        &ParentPage {
            heading: "Ouverture de Pronote…",
            body: &body,
            actions: &[("Continuer vers Pronote", service)],
            primary: true,
            code: None,
            refresh: Some(service),
        },
    )
}

/// The page that ends a long chain of browser-driven re-logins: it starts a new
/// navigation to `next` (the ENT's `/login`, a path on this origin) by itself, with no
/// script, so no browser stops on "too many redirects".
pub fn searching(brand: &Brand, next: &str) -> String {
    let next = local_href(next).unwrap_or("/");
    let body = html! {
        p { "Un instant : bonenfant demande à l'ENT l'espace de votre enfant." }
    };
    let page = parent_page(
        brand,
        &ParentPage {
            heading: "Recherche de l'espace de votre enfant…",
            body: &body,
            actions: &[("Continuer", next)],
            primary: true,
            code: None,
            refresh: None,
        },
    );
    // A path on this origin, which `ParentPage::refresh` (absolute URLs only) does not
    // take: the meta goes in the head, escaped like any attribute.
    let meta =
        html! { meta http-equiv="refresh" content=(format!("0; url={next}")); }.into_string();
    page.replacen("<title>", &format!("{meta}<title>"), 1)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::super::web_href;
    use super::*;

    const CONTINUE: &str = "https://pronote.example/0330012a/pronote/?ticket=ST-1&x=2";

    /// The give-up page with a "continue" link (only an absolute `http(s)` URL is one)
    /// and a "choose" link, in the default brand.
    fn gave_up(continue_href: &str, choose_href: &str) -> String {
        give_up(
            &Brand::default(),
            &GiveUp {
                continue_href: web_href(continue_href),
                choose_href: Some(choose_href),
                ..GiveUp::default()
            },
        )
    }

    fn links(page: &str) -> Vec<&str> {
        page.split(" href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn gave_up_offers_to_go_on_to_choose_again_or_to_go_back() {
        let choose = chooser_href("/bonenfant", "https://pronote.example/?a=1&b=2");
        assert_eq!(
            choose,
            "/bonenfant/choose?service=https%3A%2F%2Fpronote.example%2F%3Fa%3D1%26b%3D2"
        );
        let page = gave_up(CONTINUE, &choose);
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\""));
        assert!(page
            .contains("<title>L'ENT n'a pas ouvert la session de l'enfant attendu — ENT</title>"));
        assert!(page.contains("<h1>L'ENT n'a pas ouvert la session de l'enfant attendu</h1>"));
        assert!(
            page.contains("<p>Après plusieurs essais, l'ENT propose toujours un autre enfant.</p>")
        );
        assert!(page.contains(">Continuer vers Pronote quand même</a>"));
        assert!(page.contains(">Choisir un autre enfant</a>"));
        assert_eq!(
            links(&page),
            [
                "https://pronote.example/0330012a/pronote/?ticket=ST-1&amp;x=2",
                choose.as_str(),
                "/"
            ]
        );
    }

    #[test]
    fn give_up_names_the_child_and_offers_another_round() {
        let page = give_up(
            &Brand::default(),
            &GiveUp {
                child: Some("Nina"),
                retry_href: Some("/bonenfant/retry?x=1"),
                continue_href: Some("/bonenfant/unpinned?x=1"),
                choose_href: None,
            },
        );
        assert!(page.contains("<h1>L'ENT n'a pas ouvert la session de Nina</h1>"));
        assert_eq!(
            links(&page),
            ["/bonenfant/retry?x=1", "/bonenfant/unpinned?x=1", "/"]
        );
        assert!(page.contains("<a href=\"/bonenfant/retry?x=1\" class=\"primary\">Réessayer</a>"));
    }

    #[test]
    fn gave_up_hostile_location_is_escaped_inside_its_link() {
        let reference = skeleton(&gave_up(CONTINUE, "/bonenfant/choose?service=x"));
        for hostile in [
            "https://pronote.example/?t=\"><script>alert(1)</script>",
            "https://pronote.example/?t=\" onclick=\"alert(1)",
            "https://pronote.example/?t='&<b>",
        ] {
            let page = gave_up(hostile, "/bonenfant/choose?service=x");
            assert_eq!(skeleton(&page), reference, "{page}");
            assert_eq!(links(&page)[0], escaped(hostile));
            assert!(!page.contains("<script"));
        }
    }

    #[test]
    fn gave_up_renders_no_link_for_a_javascript_or_relative_location() {
        for refused in [
            "javascript:alert(document.cookie)",
            "JAVASCRIPT:alert(1)",
            " javascript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "//evil.example/",
            "",
        ] {
            let page = gave_up(refused, "/bonenfant/choose?service=x");
            assert_eq!(
                links(&page),
                ["/bonenfant/choose?service=x", "/"],
                "{refused:?}"
            );
            assert!(!page.contains("Continuer vers Pronote"));
            assert!(!page.to_ascii_lowercase().contains("script:"), "{page}");
        }
    }

    #[test]
    fn gave_up_choose_link_stays_on_this_origin_and_escaped() {
        for hostile in HOSTILE {
            // What `chooser_href` makes of any service is a plain path.
            let choose = chooser_href("/bonenfant", hostile);
            let page = gave_up(CONTINUE, &choose);
            assert_eq!(links(&page)[1], escaped(&choose));
            assert!(!page.contains("<script") && !page.contains("<img"));
        }
        for refused in ["javascript:alert(1)", "//evil.example/choose"] {
            assert_eq!(
                links(&gave_up(CONTINUE, refused)),
                [escaped(CONTINUE), "/".to_owned()]
            );
        }
    }

    #[test]
    fn pin_noted_says_the_next_login_opens_that_child() {
        let page = pin_noted(&Brand::default());
        assert!(page.contains("<h1>C'est noté</h1><p>Votre prochaine connexion à Pronote ouvrira l'espace de cet enfant.</p>"));
        assert_eq!(links(&page), ["/"]);
    }

    #[test]
    fn opening_goes_on_by_itself_and_offers_a_link() {
        let service = "https://pronote.example/0330012a/pronote/parent.html?a=1&b=2";
        let page = opening(&Brand::default(), Some("Chloé"), service);
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"0;url=https://pronote.example/0330012a/pronote/parent.html?a=1&amp;b=2\">"));
        assert!(page.contains("<p>Pronote s'ouvre sur l'espace de Chloé.</p>"));
        assert_eq!(
            links(&page),
            ["https://pronote.example/0330012a/pronote/parent.html?a=1&amp;b=2"]
        );
        let reference = skeleton(&page);
        for hostile in HOSTILE {
            let page = opening(&Brand::default(), Some(hostile), service);
            assert_eq!(skeleton(&page), reference, "{page}");
        }
        let page = opening(&Brand::default(), None, "javascript:alert(1)");
        assert!(
            !page.contains("javascript") && !page.contains("refresh"),
            "{page}"
        );
    }
}
