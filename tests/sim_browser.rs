//! The scripted parent reads bonenfant's real chooser page as a person does: by the first
//! names it shows. Rendered here with the proxy's own page code, so a change to the
//! page's markup that a person would still read but the scripted parent could not shows
//! up here, not as odd demo figures.

use bonenfant::pages::Brand;
use bonenfant::pin::chooser::{render, ChooserChild};
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::sim::browser::{choice_showing, choices};
use bonenfant::sim::Page;
use http::StatusCode;
use url::Url;

fn key(eleve_id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse("0330101A").expect("UAI"),
        eleve_id: eleve_id.to_owned(),
    }
}

fn page(body: String) -> Page {
    Page {
        url: Url::parse("http://127.0.0.1:8443/bonenfant/choose?service=x").expect("URL"),
        status: StatusCode::OK,
        body,
        hops: 0,
        location: None,
    }
}

const SERVICE: &str = "http://127.0.0.1:9/0330101a/pronote/parent.html?a=1&b=2";

#[test]
fn finds_each_child_by_first_name_and_posts_the_page_s_own_fields() {
    let (lea, hugo, homonym) = (key("837001"), key("837002"), key("837003"));
    let children = [
        ChooserChild {
            key: &lea,
            first_name: Some("Léa"),
            class: Some("4B"),
            establishment: None,
            pinned: false,
        },
        ChooserChild {
            key: &hugo,
            first_name: Some("Hugo"),
            class: Some("6A"),
            establishment: None,
            pinned: true,
        },
        ChooserChild {
            key: &homonym,
            first_name: Some("Léa"),
            class: Some("3C"),
            establishment: None,
            pinned: false,
        },
    ];
    let html = render(
        &Brand::default(),
        &children,
        SERVICE,
        "csrf-token",
        "/bonenfant/choose",
    );
    let (form, found) = choices(&page(html), "child").expect("a chooser form");
    assert_eq!(
        form.action.as_str(),
        "http://127.0.0.1:8443/bonenfant/choose"
    );
    assert!(form
        .fields
        .contains(&("csrf".to_owned(), "csrf-token".to_owned())));
    assert!(form
        .fields
        .contains(&("service".to_owned(), SERVICE.to_owned())));
    assert_eq!(found.len(), 3);
    let value = |first_name, class| choice_showing(&found, first_name, class).map(|c| &c.value);
    assert_eq!(value("Hugo", "6A"), Some(&found[1].value));
    assert_eq!(
        value("Léa", "4B"),
        Some(&found[0].value),
        "siblings told apart by class"
    );
    assert_eq!(value("Léa", "3C"), Some(&found[2].value));
    assert_eq!(value("Zoé", "4B"), None);
}

#[test]
fn finds_nobody_where_the_page_shows_no_first_name() {
    let (lea, hugo) = (key("837001"), key("837002"));
    let children = [
        ChooserChild {
            key: &lea,
            first_name: None,
            class: Some("4B"),
            establishment: None,
            pinned: false,
        },
        ChooserChild {
            key: &hugo,
            first_name: None,
            class: None,
            establishment: None,
            pinned: false,
        },
    ];
    let html = render(
        &Brand::default(),
        &children,
        SERVICE,
        "csrf-token",
        "/bonenfant/choose",
    );
    let (_, found) = choices(&page(html), "child").expect("a chooser form");
    let labels: Vec<&str> = found.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels.len(), 2);
    assert!(
        labels[0].starts_with("Enfant n°1") && labels[1].starts_with("Enfant n°2"),
        "{labels:?}"
    );
    assert_eq!(
        choice_showing(&found, "Léa", "4B"),
        None,
        "no name, no guess"
    );
    assert_eq!(choice_showing(&found, "Hugo", "6A"), None);
}

#[test]
fn a_page_without_children_offers_no_choice() {
    let html = render(
        &Brand::default(),
        &[],
        SERVICE,
        "csrf-token",
        "/bonenfant/choose",
    );
    assert!(choices(&page(html), "child").is_none());
}
