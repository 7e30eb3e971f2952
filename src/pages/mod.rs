//! The HTML pages bonenfant writes itself, through one template crate (`maud`), so
//! every value is escaped unless a template says otherwise: the chooser, the error
//! pages, the "retry gave up" and "pin noted" pages here, and the shell and helpers the
//! HTML report and the simulators build on.
//!
//! The only unescaped text a template may insert is a [`Css`] stylesheet, which takes a
//! `&'static str`, and a [`Color`], rendered from three parsed bytes: nothing read from
//! a request, the ENT or a log can reach a stylesheet. Every page a parent sees is framed
//! by [`parent_page`] (phone viewport, French heading, next steps, code in small print,
//! the ENT's [`Brand`]). Link
//! targets that come from outside go through [`web_href`] or [`local_href`] first, so a
//! `javascript:` URL never becomes a link.

mod chooser;
mod control;
mod error;
mod shell;
pub mod status;

pub use chooser::{chooser, Choice};
pub use control::{chooser_href, give_up, opening, pin_noted, searching, GiveUp};
pub use error::error;
pub use maud::{html, Markup, Render};
pub use shell::{parent_page, Brand, Color, Logo, LogoError, ParentPage, MAX_LOGO_BYTES};
pub use status::status;

/// A verdict as the DSI and the helpdesk read it, in French: one wording for the
/// report, `lookup` and the status page.
pub fn verdict_label(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "correct",
        "wrong_establishment" => "mauvais établissement",
        "wrong_child" => "mauvais enfant",
        "flip" => "changement d'enfant",
        "ambiguous" => "ambigu",
        "unresolved" => "non résolu",
        _ => "autre",
    }
}

/// What a page's `<head>` holds besides `<meta charset="utf-8">`.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub title: &'a str,
    /// Adds the mobile viewport `<meta>` (pages a parent reads on a phone).
    pub viewport: bool,
    pub style: Option<Css>,
}

/// A whole French page: doctype, `<html lang="fr">`, `head`, then `body` (the
/// `<body>` element's content). Ends with a newline, as a text file does.
pub fn document(head: &Head<'_>, body: Markup) -> String {
    let mut page = html! {
        (maud::DOCTYPE) "\n"
        html lang="fr" {
            head {
                meta charset="utf-8";
                @if head.viewport {
                    meta name="viewport" content="width=device-width, initial-scale=1";
                }
                title { (head.title) }
                @if let Some(style) = head.style {
                    style { (style) }
                }
            }
            body { (body) }
        }
    }
    .into_string();
    page.push('\n');
    page
}

/// A stylesheet written in the source, inserted as is (CSS is raw text in `<style>`:
/// escaping would corrupt it). `'static` so that no runtime value can be one.
#[derive(Clone, Copy, Debug)]
pub struct Css(pub &'static str);

impl Render for Css {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(self.0);
    }
}

/// Text from outside (a log line, an ENT attribute) shown as text: escaped, with
/// control characters, which are parse errors in HTML, shown as U+FFFD.
#[derive(Clone, Copy, Debug)]
pub struct Printable<'a>(pub &'a str);

impl Render for Printable<'_> {
    fn render_to(&self, buffer: &mut String) {
        if self.0.contains(char::is_control) {
            let cleaned: String = self
                .0
                .chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect();
            cleaned.as_str().render_to(buffer);
        } else {
            self.0.render_to(buffer);
        }
    }
}

/// `href` if it is an absolute `http` or `https` URL, as a browser parses it; `None`
/// for anything else (`javascript:`, `data:`, relative), which a page then shows
/// without a link.
pub fn web_href(href: &str) -> Option<&str> {
    url::Url::parse(href)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .map(|_| href)
}

/// `href` if it is a path on this very origin (`/…`, not `//host/…` nor `/\host`,
/// which browsers read as another host), or else an absolute `http(s)` URL.
pub fn local_href(href: &str) -> Option<&str> {
    let mut chars = href.chars();
    match (chars.next(), chars.next()) {
        (Some('/'), Some('/' | '\\')) => None,
        (Some('/'), _) => Some(href),
        _ => web_href(href),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! What escaping tests compare: a page's structure, without its text.

    use std::sync::LazyLock;

    use regex::Regex;

    static TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<(/?[A-Za-z!][^\s/>]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*/?>"#)
            .unwrap_or_else(|e| unreachable!("TAG: {e}"))
    });
    static ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"([^\s=>]+)(?:="[^"]*")?"#).unwrap_or_else(|e| unreachable!("ATTR: {e}"))
    });

    /// Every tag of `page` with its attribute names, in order: a value that broke out
    /// of its text or its quotes adds a tag or an attribute, and changes this.
    pub(crate) fn skeleton(page: &str) -> Vec<String> {
        TAG.captures_iter(page)
            .map(|tag| {
                let names: Vec<&str> = ATTRIBUTE
                    .captures_iter(&tag[2])
                    .filter_map(|a| a.get(1).map(|m| m.as_str()))
                    .collect();
                format!("{} {}", &tag[1], names.join(" "))
            })
            .collect()
    }

    /// The hostile strings each escaping test feeds a page, named after the attack.
    pub(crate) const HOSTILE: [&str; 5] = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)",
        "Tom & Jerry &amp; co",
        "</title></head><body><form action=\"https://evil.example\">",
    ];

    /// What a hostile string must look like once escaped.
    pub(crate) fn escaped(hostile: &str) -> String {
        hostile
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    #[test]
    fn document_escapes_its_title_and_keeps_css_as_written() {
        let benign = Head {
            title: "Titre",
            viewport: true,
            style: Some(Css("a>b{content:'&'}")),
        };
        let reference = skeleton(&document(&benign, html! { p { "x" } }));
        for hostile in HOSTILE {
            let page = document(
                &Head {
                    title: hostile,
                    ..benign
                },
                html! { p { "x" } },
            );
            assert!(page.contains(&escaped(hostile)), "{page}");
            assert_eq!(skeleton(&page), reference, "{hostile}");
            assert!(page.contains("a>b{content:'&'}"));
        }
    }

    #[test]
    fn printable_text_is_escaped_and_loses_control_characters() {
        let markup = html! { p { (Printable("<b>\u{0}&\u{1b}[31m</b>")) } };
        assert_eq!(
            markup.into_string(),
            "<p>&lt;b&gt;\u{fffd}&amp;\u{fffd}[31m&lt;/b&gt;</p>"
        );
    }

    #[test]
    fn script_urls_are_no_web_link() {
        for refused in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "//evil.example/",
            "relative/path",
            "",
        ] {
            assert_eq!(web_href(refused), None, "{refused:?}");
        }
        for kept in ["https://pronote.example/?ticket=ST-1", "HTTP://x/"] {
            assert_eq!(web_href(kept), Some(kept));
        }
    }

    #[test]
    fn local_links_stay_on_this_origin() {
        assert_eq!(
            local_href("/bonenfant/choose?x=1"),
            Some("/bonenfant/choose?x=1")
        );
        for refused in [
            "//evil.example/",
            "/\\evil.example/",
            "javascript:x",
            "choose",
        ] {
            assert_eq!(local_href(refused), None, "{refused:?}");
        }
        assert_eq!(local_href("https://x/"), Some("https://x/"));
    }
}
