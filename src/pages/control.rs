//! The pages that end a control step: the retry loop gave up, a pin was noted.

use maud::html;

use super::{document, local_href, web_href, Head};

/// Where the chooser page for `service` lives, under the control prefix.
pub fn chooser_href(control_prefix: &str, service: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("service", service)
        .finish();
    format!("{control_prefix}/choose?{query}")
}

/// The page a parent gets when the ENT kept naming another child until the retry
/// budget ran out: go on anyway (`continue_href`, the ENT's redirect to Pronote with
/// its last ticket) or choose again (`choose_href`, see [`chooser_href`]).
///
/// `continue_href` comes from the ENT's `Location` header: it is a link only when it is
/// an absolute `http(s)` URL, and `choose_href` only when it stays on this origin (or is
/// `http(s)`); otherwise that link is left out.
pub fn gave_up(continue_href: &str, choose_href: &str) -> String {
    let body = html! {
        main {
            h1 { "L'ENT n'a pas ouvert la session de l'enfant attendu" }
            p { "Après plusieurs essais, l'ENT propose toujours un autre enfant." }
            @if let Some(href) = web_href(continue_href) {
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

    const CONTINUE: &str = "https://pronote.example/0330012a/pronote/?ticket=ST-1&x=2";

    fn links(page: &str) -> Vec<&str> {
        page.split("<a href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn gave_up_offers_to_go_on_or_to_choose_again() {
        let choose = chooser_href("/bonenfant", "https://pronote.example/?a=1&b=2");
        assert_eq!(
            choose,
            "/bonenfant/choose?service=https%3A%2F%2Fpronote.example%2F%3Fa%3D1%26b%3D2"
        );
        let page = gave_up(CONTINUE, &choose);
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\""));
        assert!(page.contains("<title>Pronote — enfant non obtenu</title>"));
        assert!(page.contains("<h1>L'ENT n'a pas ouvert la session de l'enfant attendu</h1>"));
        assert!(
            page.contains("<p>Après plusieurs essais, l'ENT propose toujours un autre enfant.</p>")
        );
        assert!(page.contains(">Continuer vers Pronote quand même</a></p>"));
        assert!(page.contains(">Choisir un autre enfant</a></p>"));
        assert_eq!(
            links(&page),
            [
                "https://pronote.example/0330012a/pronote/?ticket=ST-1&amp;x=2",
                choose.as_str()
            ]
        );
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
            assert_eq!(links(&page), ["/bonenfant/choose?service=x"], "{refused:?}");
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
            assert_eq!(links(&gave_up(CONTINUE, refused)), [escaped(CONTINUE)]);
        }
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
