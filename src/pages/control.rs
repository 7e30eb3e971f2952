//! The pages that end a control step: the retry loop gave up, a pin was noted.

use maud::html;

use super::{document, local_href, Head};

/// Where the chooser page for `service` lives, under the control prefix.
pub fn chooser_href(control_prefix: &str, service: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("service", service)
        .finish();
    format!("{control_prefix}/choose?{query}")
}

/// The page a parent gets when the ENT kept naming another child until the retry
/// budget ran out. It names the child looked for (when known) and offers three ways on,
/// all on this origin and none carrying a ticket (a ticket would be dead by the time a
/// parent clicks): go on to Pronote without pinning, once (`continue_href`); try another
/// round (`retry_href`); choose another child (`choose_href`, see [`chooser_href`]).
/// A link that is not a path on this origin is not rendered.
pub fn gave_up(
    child: Option<&str>,
    continue_href: &str,
    retry_href: &str,
    choose_href: &str,
) -> String {
    let body = html! {
        main {
            h1 { "L'ENT n'a pas ouvert la session de l'enfant attendu" }
            @match child {
                Some(name) => p { "Après plusieurs essais, l'ENT propose toujours un autre enfant que " strong { (name) } "." },
                None => p { "Après plusieurs essais, l'ENT propose toujours un autre enfant." },
            }
            @if let Some(href) = local_href(retry_href) {
                p { a href=(href) { "Réessayer" } }
            }
            @if let Some(href) = local_href(continue_href) {
                p { a href=(href) { "Continuer vers Pronote quand même" } }
            }
            @if let Some(href) = local_href(choose_href) {
                p { a href=(href) { "Choisir un autre enfant" } }
            }
        }
    };
    document(
        &Head {
            title: "Pronote — enfant non obtenu",
            viewport: true,
            style: None,
        },
        body,
    )
}

/// The page that ends a long chain of browser-driven re-logins: it starts a new
/// navigation to `next` (the ENT's `/login`, a path on this origin) by itself, with no
/// script, so no browser stops on "too many redirects".
pub fn searching(next: &str) -> String {
    let next = local_href(next).unwrap_or("/");
    let refresh = format!("0; url={next}");
    let body = html! {
        main {
            h1 { "Recherche de l'espace de votre enfant…" }
            p { a href=(next) { "Continuer" } }
        }
    };
    let page = document(
        &Head {
            title: "Pronote — recherche en cours",
            viewport: true,
            style: None,
        },
        body,
    );
    // The refresh goes in the head: maud writes it escaped like any attribute.
    let meta = html! { meta http-equiv="refresh" content=(refresh); }.into_string();
    page.replacen("<title>", &format!("{meta}<title>"), 1)
}

/// The answer to a pin POST whose service is no redirect target: the pin holds for the
/// next login.
pub fn pin_noted() -> String {
    let body = html! {
        main {
            h1 { "C'est noté" }
            p { "Votre prochaine connexion à Pronote ouvrira la session de cet enfant." }
        }
    };
    document(
        &Head {
            title: "Enfant choisi",
            viewport: false,
            style: None,
        },
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    fn links(page: &str) -> Vec<&str> {
        page.split("<a href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    const CONTINUE: &str = "/bonenfant/give-up?choice=continue&service=x&csrf=t";
    const RETRY: &str = "/bonenfant/give-up?choice=retry&service=x&csrf=t";

    #[test]
    fn gave_up_names_the_child_and_offers_three_ways_on() {
        let choose = chooser_href("/bonenfant", "https://pronote.example/?a=1&b=2");
        assert_eq!(
            choose,
            "/bonenfant/choose?service=https%3A%2F%2Fpronote.example%2F%3Fa%3D1%26b%3D2"
        );
        let page = gave_up(Some("Nina"), CONTINUE, RETRY, &choose);
        assert!(page.contains("<title>Pronote — enfant non obtenu</title>"));
        assert!(page.contains("<strong>Nina</strong>"));
        assert!(page.contains(">Réessayer</a>"));
        assert!(page.contains(">Continuer vers Pronote quand même</a>"));
        assert!(page.contains(">Choisir un autre enfant</a>"));
        assert_eq!(
            links(&page),
            [escaped(RETRY), escaped(CONTINUE), choose.clone()]
        );
        assert!(!page.contains("ticket="), "no link carries a ticket");
    }

    #[test]
    fn gave_up_hostile_child_name_is_text() {
        let reference = skeleton(&gave_up(Some("Nina"), CONTINUE, RETRY, "/c"));
        for hostile in HOSTILE {
            let page = gave_up(Some(hostile), CONTINUE, RETRY, "/c");
            assert_eq!(skeleton(&page), reference, "{page}");
        }
    }

    #[test]
    fn gave_up_renders_no_link_off_this_origin() {
        for refused in [
            "javascript:alert(document.cookie)",
            "//evil.example/",
            "/\\evil.example/",
            "",
        ] {
            let page = gave_up(None, refused, refused, refused);
            assert!(links(&page).is_empty(), "{refused:?}: {page}");
        }
    }

    #[test]
    fn searching_page_reloads_itself_towards_this_origin_only() {
        let page = searching("/cas/login?service=https%3A%2F%2Fx%2F&gateway=true");
        assert!(page.contains(
            "<meta http-equiv=\"refresh\" content=\"0; url=/cas/login?service=https%3A%2F%2Fx%2F&amp;gateway=true\">"
        ), "{page}");
        let off = searching("//evil.example/");
        assert!(off.contains("url=/\""), "{off}");
    }

    #[test]
    fn pin_noted_says_the_next_login_opens_that_child() {
        assert_eq!(
            pin_noted(),
            "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Enfant choisi</title></head>\
             <body><main><h1>C'est noté</h1><p>Votre prochaine connexion à Pronote ouvrira la session de cet enfant.</p></main></body></html>\n"
        );
    }
}
