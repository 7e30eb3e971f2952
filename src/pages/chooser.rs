//! The chooser page's markup (the tokens and the form's rules are `pin::chooser`'s).
//!
//! One button per child, each submitting the form with its own `child` token: one tap
//! on a phone, Tab and Enter on a keyboard, no JavaScript.

use maud::html;

use super::shell::{parent_page, Brand, ParentPage};

/// One child the chooser offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The button's value: an opaque token, never the pupil's identifier.
    pub token: String,
    pub first_name: Option<&'a str>,
    pub class: Option<&'a str>,
    /// The establishment's name, when the directory gives it.
    pub establishment: Option<&'a str>,
    /// The current pin: marked, so a parent sees what the last choice was.
    pub checked: bool,
}

/// The chooser page: a form posting `child`, `service` and `csrf` to `action`, or a
/// note when no child is known yet. Children are shown in the order given.
pub fn chooser(
    brand: &Brand,
    children: &[Choice<'_>],
    service: &str,
    csrf: &str,
    action: &str,
) -> String {
    let body = html! {
        @if children.is_empty() {
            p {
                "Aucun enfant n'est encore connu pour ce compte. Ouvrez Pronote une \
                 première fois depuis l'ENT, puis revenez sur cette page."
            }
        } @else {
            p { "Choisissez l'enfant dont vous voulez ouvrir l'espace Pronote." }
            form method="post" action=(action) {
                input type="hidden" name="service" value=(service);
                input type="hidden" name="csrf" value=(csrf);
                ul.choices {
                    @for (n, child) in children.iter().enumerate() {
                        li {
                            button type="submit" name="child" value=(child.token)
                                aria-current=[child.checked.then_some("true")] {
                                span.name {
                                    // Numbered when nothing names the child, so two
                                    // children still read apart.
                                    @match child.first_name {
                                        Some(name) => { (name) }
                                        None => { "Enfant n°" (n + 1) }
                                    }
                                }
                                @if child.class.is_some() || child.establishment.is_some() {
                                    span.detail {
                                        @if let Some(class) = child.class {
                                            "Classe de " (class)
                                        }
                                        @if child.class.is_some() && child.establishment.is_some() {
                                            " · "
                                        }
                                        @if let Some(establishment) = child.establishment {
                                            (establishment)
                                        }
                                    }
                                }
                                @if child.checked {
                                    span.current { "Dernier choix" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    parent_page(
        brand,
        &ParentPage {
            heading: "Pour quel enfant ouvrir Pronote\u{a0}?",
            body: &body,
            actions: &[("Retour à l'ENT", brand.ent_url.as_str())],
            primary: false,
            code: None,
            refresh: None,
        },
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
            establishment: None,
            checked: false,
        }
    }

    const SERVICE: &str = "https://pronote.example/0330012a/pronote/?a=1&b=2";

    fn page(children: &[Choice<'_>], service: &str, csrf: &str, action: &str) -> String {
        chooser(&Brand::default(), children, service, csrf, action)
    }

    #[test]
    fn each_child_is_one_button_named_by_first_name_class_and_establishment() {
        let mut zoe = child(Some("Zoé"), Some("4e B"));
        zoe.establishment = Some("Collège Jean Moulin");
        let page = page(
            &[
                zoe,
                child(Some("Léo"), None),
                child(None, Some("6e A")),
                child(None, None),
            ],
            SERVICE,
            "tok",
            "/bonenfant/choose",
        );
        for label in [
            "<span class=\"name\">Zoé</span><span class=\"detail\">Classe de 4e B · Collège Jean Moulin</span>",
            "<span class=\"name\">Léo</span></button>",
            "<span class=\"name\">Enfant n°3</span><span class=\"detail\">Classe de 6e A</span>",
            "<span class=\"name\">Enfant n°4</span></button>",
        ] {
            assert!(page.contains(label), "{label}: {page}");
        }
        assert_eq!(
            page.matches("<button type=\"submit\" name=\"child\" value=\"t0\">")
                .count(),
            4
        );
        assert!(page.contains("<form method=\"post\" action=\"/bonenfant/choose\">"));
        assert!(page.contains(
            "name=\"service\" value=\"https://pronote.example/0330012a/pronote/?a=1&amp;b=2\""
        ));
        assert!(page.contains("<h1>Pour quel enfant ouvrir Pronote\u{a0}?</h1>"));
        assert!(
            page.contains("<nav><a href=\"/\">Retour à l'ENT</a></nav>"),
            "not a main step"
        );
        assert!(!page.contains("type=\"radio\""));
    }

    #[test]
    fn the_current_pin_is_marked() {
        let mut pinned = child(Some("Zoé"), None);
        pinned.checked = true;
        let page = page(&[pinned, child(Some("Léo"), None)], SERVICE, "tok", "/c");
        assert_eq!(page.matches("aria-current=\"true\"").count(), 1);
        assert_eq!(page.matches("Dernier choix").count(), 1);
    }

    #[test]
    fn no_child_known_gives_no_form_but_a_way_back() {
        let page = page(&[], SERVICE, "tok", "/c");
        assert!(page.contains("Aucun enfant n'est encore connu"));
        assert!(!page.contains("<form"));
        assert!(page.contains("Retour à l'ENT"));
    }

    #[test]
    fn hostile_first_names_and_classes_are_text() {
        let reference = skeleton(&page(
            &[child(Some("Zoé"), Some("4e B"))],
            SERVICE,
            "tok",
            "/c",
        ));
        for hostile in HOSTILE {
            let page = page(&[child(Some(hostile), Some(hostile))], SERVICE, "tok", "/c");
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            assert_eq!(page.matches(&escaped(hostile)).count(), 2, "{page}");
            assert!(!page.contains("<script") && !page.contains("<img"));
        }
    }

    #[test]
    fn hostile_service_urls_stay_inside_the_hidden_field() {
        let reference = skeleton(&page(&[child(Some("Zoé"), None)], SERVICE, "tok", "/c"));
        for hostile in HOSTILE.into_iter().chain([
            "javascript:alert(1)",
            "https://x/\"autofocus onfocus=\"alert(1)",
            "https://x/?a=<b>&c='d'",
        ]) {
            let page = page(&[child(Some("Zoé"), None)], hostile, hostile, hostile);
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            let field = format!("name=\"service\" value=\"{}\"", escaped(hostile));
            assert!(page.contains(&field), "{page}");
        }
    }
}
