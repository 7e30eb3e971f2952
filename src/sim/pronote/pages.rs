//! The test Pronote's pages, written with `maud` templates: every value is escaped
//! unless marked otherwise, and nothing here is.

use maud::{html, Markup};

use crate::sim::http as web;

/// What a landing shows.
#[derive(Clone, Copy, Debug)]
pub enum Shown<'a> {
    /// The "Espace Parents" of one child.
    Landed {
        eleve_id: &'a str,
        first_name: &'a str,
        last_name: &'a str,
        class: &'a str,
    },
    /// The ticket was good but named no pupil of this establishment.
    UnknownUser,
    /// The validation failed; `code` is the CAS failure code or the simulator's own.
    Failure { code: &'a str },
}

/// One test parent on the front page, with a link per child: (URL, label).
#[derive(Clone, Debug)]
pub struct Account<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub links: Vec<(String, String)>,
}

/// A whole page: `title` in the tab and the banner.
fn page(title: &str, content: Markup) -> String {
    web::page(
        title,
        html! {
            header { strong { (title) } " (simulateur bonenfant)" }
            (content)
        },
    )
}

/// An establishment or page this Pronote does not serve.
pub fn not_found() -> String {
    page("PRONOTE", html! { p { "Établissement ou page inconnu." } })
}

/// A front page asked for under a host name that forms no URL.
pub fn bad_address() -> String {
    page("PRONOTE", html! { p { "Adresse invalide." } })
}

/// The page after a landing, in establishment `uai` named `name`. `again` goes back
/// through the ENT for a new ticket, as a parent clicking Pronote in the ENT portal does.
/// The `<main>`'s `data-*` attributes are what scripted browsers read.
pub fn landing(uai: &str, name: &str, shown: Shown<'_>, again: &str) -> String {
    let content = match shown {
        Shown::Landed {
            eleve_id,
            first_name,
            last_name,
            class,
        } => html! {
            main data-outcome="landed" data-uai=(uai) data-pupil=(eleve_id) {
                h1 { "Espace Parents" }
                p {
                    "Élève : " strong.pupil { (first_name) " " (last_name) }
                    ", classe " span.class { (class) }
                }
            }
        },
        Shown::UnknownUser => html! {
            main data-outcome="unknown_user" data-uai=(uai) {
                h1 { "Utilisateur inconnu" }
                p { "Aucun élève de cet établissement ne correspond à votre compte." }
            }
        },
        Shown::Failure { code } => html! {
            main data-outcome="failure" data-uai=(uai) data-code=(code) {
                h1 { "Échec de l’authentification" }
                p { "Le serveur d’authentification a refusé la connexion." }
            }
        },
    };
    page(
        &format!("PRONOTE — Espace Parents — {name}"),
        html! {
            (content)
            p { a.again href=(again) { "Revenir par l’ENT" } }
        },
    )
}

/// The front page (`demo --serve`): every test parent with their credentials and one
/// link per child.
pub fn accounts(accounts: &[Account<'_>]) -> String {
    page(
        "PRONOTE — comptes de test",
        html! {
            p { "Choisissez l’enfant que vous voulez voir ; connectez-vous à l’ENT avec le compte du parent." }
            table {
                thead { tr { th { "Identifiant" } th { "Mot de passe" } th { "Enfants" } } }
                tbody {
                    @for account in accounts {
                        tr {
                            td { code { (account.login) } }
                            td { code { (account.password) } }
                            td {
                                @for (n, (url, label)) in account.links.iter().enumerate() {
                                    @if n > 0 { br; }
                                    a href=(url) { (label) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"<script>alert("x")</script>&'"#;

    #[test]
    fn landing_escapes_a_hostile_first_name_and_service_url() {
        let again =
            format!("http://ent/cas/login?service=http%3A%2F%2Fx%2F&x=\"><script>{HOSTILE}");
        let html = landing(
            "0330101A",
            HOSTILE,
            Shown::Landed {
                eleve_id: "837001",
                first_name: HOSTILE,
                last_name: "MARTIN",
                class: "4B",
            },
            &again,
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'"));
        assert!(html.contains("service=http%3A%2F%2Fx%2F&amp;x=&quot;&gt;&lt;script&gt;"));
        assert!(html
            .contains(r#"<main data-outcome="landed" data-uai="0330101A" data-pupil="837001">"#));
    }

    #[test]
    fn failure_and_front_page_escape_their_values() {
        let html = landing(
            "0330101A",
            "Collège",
            Shown::Failure { code: HOSTILE },
            "/again",
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains(r#"data-code="&lt;script&gt;"#));
        let html = accounts(&[Account {
            login: HOSTILE,
            password: HOSTILE,
            links: vec![(format!("/x?a=1&b=\"{HOSTILE}"), HOSTILE.to_owned())],
        }]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains(r#"href="/x?a=1&amp;b=&quot;&lt;script&gt;"#));
    }
}
