//! The chooser page's markup (the tokens and the form's rules are `pin::chooser`'s).

use maud::html;

use super::{document, Css, Head};

const STYLE: Css = Css("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
ul{list-style:none;padding:0}li{margin:.5rem 0}button{font-size:1rem;padding:.5rem 1rem}");

/// One child the chooser offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The radio button's value: an opaque token, never the pupil's identifier.
    pub token: String,
    pub first_name: Option<&'a str>,
    pub class: Option<&'a str>,
    /// Checked: the current pin.
    pub checked: bool,
}

/// The chooser page: a form posting `child`, `service` and `csrf` to `action`, or a
/// note when no child is known yet.
pub fn chooser(children: &[Choice<'_>], service: &str, csrf: &str, action: &str) -> String {
    let body = html! {
        main {
            h1 { "Choisir l'enfant" }
            @if children.is_empty() {
                p {
                    "Aucun enfant n'est encore connu pour ce compte. Connectez-vous une \
                     première fois à Pronote, puis revenez sur cette page."
                }
            } @else {
                form method="post" action=(action) {
                    fieldset {
                        legend { "Pour quel enfant voulez-vous ouvrir Pronote\u{a0}?" }
                        ul {
                            @for (n, child) in children.iter().enumerate() {
                                @let id = format!("c{n}");
                                li {
                                    input type="radio" name="child" id=(id) value=(child.token)
                                        required checked[child.checked];
                                    label for=(id) {
                                        // Numbered when the ENT gave no first name, so
                                        // two children still read apart.
                                        @match (child.first_name, child.class) {
                                            (Some(name), Some(class)) => {
                                                (name) " — classe de " (class)
                                            }
                                            (Some(name), None) => { (name) }
                                            (None, Some(class)) => {
                                                "Enfant n°" (n + 1) " — classe de " (class)
                                            }
                                            (None, None) => { "Enfant n°" (n + 1) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    input type="hidden" name="service" value=(service);
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Ouvrir Pronote pour cet enfant" }
                }
            }
        }
    };
    document(
        &Head {
            title: "Choisir l'enfant — Pronote",
            viewport: true,
            style: Some(STYLE),
        },
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    fn child<'a>(first_name: Option<&'a str>, class: Option<&'a str>) -> Choice<'a> {
        Choice {
            token: "t0".to_owned(),
            first_name,
            class,
            checked: false,
        }
    }

    const SERVICE: &str = "https://pronote.example/0330012a/pronote/?a=1&b=2";

    #[test]
    fn labels_say_first_name_and_class_or_a_number() {
        let page = chooser(
            &[
                child(Some("Zoé"), Some("4e B")),
                child(Some("Léo"), None),
                child(None, Some("6e A")),
                child(None, None),
            ],
            SERVICE,
            "tok",
            "/bonenfant/choose",
        );
        for label in [
            "Zoé — classe de 4e B",
            ">Léo<",
            "Enfant n°3 — classe de 6e A",
            "Enfant n°4<",
        ] {
            assert!(page.contains(label), "{label}: {page}");
        }
        assert!(
            page.contains("<input type=\"radio\" name=\"child\" id=\"c0\" value=\"t0\" required>")
        );
        assert!(page.contains("<label for=\"c3\">"));
        assert!(page.contains("<form method=\"post\" action=\"/bonenfant/choose\">"));
        assert!(page.contains(
            "name=\"service\" value=\"https://pronote.example/0330012a/pronote/?a=1&amp;b=2\""
        ));
    }

    #[test]
    fn the_current_pin_is_checked() {
        let mut pinned = child(Some("Zoé"), None);
        pinned.checked = true;
        let page = chooser(&[pinned, child(Some("Léo"), None)], SERVICE, "tok", "/c");
        assert_eq!(page.matches(" checked").count(), 1);
    }

    #[test]
    fn no_child_known_gives_no_form() {
        let page = chooser(&[], SERVICE, "tok", "/c");
        assert!(page.contains("Aucun enfant n'est encore connu"));
        assert!(!page.contains("<form"));
    }

    #[test]
    fn hostile_first_names_and_classes_are_text() {
        let reference = skeleton(&chooser(
            &[child(Some("Zoé"), Some("4e B"))],
            SERVICE,
            "tok",
            "/c",
        ));
        for hostile in HOSTILE {
            let page = chooser(&[child(Some(hostile), Some(hostile))], SERVICE, "tok", "/c");
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            assert_eq!(page.matches(&escaped(hostile)).count(), 2, "{page}");
            assert!(!page.contains("<script") && !page.contains("<img"));
        }
    }

    #[test]
    fn hostile_service_urls_stay_inside_the_hidden_field() {
        let reference = skeleton(&chooser(&[child(Some("Zoé"), None)], SERVICE, "tok", "/c"));
        for hostile in HOSTILE.into_iter().chain([
            "javascript:alert(1)",
            "https://x/\"autofocus onfocus=\"alert(1)",
            "https://x/?a=<b>&c='d'",
        ]) {
            let page = chooser(&[child(Some("Zoé"), None)], hostile, hostile, hostile);
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            let field = format!("name=\"service\" value=\"{}\"", escaped(hostile));
            assert!(page.contains(&field), "{page}");
        }
    }
}
