//! The frame of every page a parent sees (chooser, error pages, give-up, "C'est noté"):
//! the ENT's name, logo and colour from the configuration, a phone viewport, a French
//! heading, the next steps as large links, and the stable code in small print. No
//! script anywhere: every page reads and works with JavaScript off.

use maud::{html, Markup, Render, DOCTYPE};

use super::{local_href, Css};

/// How bonenfant's pages show the ENT they belong to (`--ent-name`, `--ent-url`,
/// `--brand-color`, `--brand-logo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    /// Shown at the top of every page (`ENT` by default).
    pub ent_name: String,
    /// Where "Retour à l'ENT" leads: the ENT's portal. `/` by default: bonenfant sits in
    /// front of the ENT, so its root is the ENT's.
    pub ent_url: String,
    /// The header's background.
    pub color: Color,
    /// The ENT's logo, inlined (the CSP admits `data:` images only).
    pub logo: Option<Logo>,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            ent_name: "ENT".to_owned(),
            ent_url: "/".to_owned(),
            color: Color::DEFAULT,
            logo: None,
        }
    }
}

/// A colour as `#rrggbb`: the only runtime value a stylesheet takes, so it is parsed
/// into bytes and rendered from them, never copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color([u8; 3]);

impl Color {
    /// A dark blue with white text well above WCAG AA contrast.
    pub const DEFAULT: Color = Color([0x1f, 0x4e, 0x8c]);

    /// `#rrggbb` or `#rgb`, any case.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.trim().strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digits: Vec<u8> = match hex.len() {
            6 => hex.as_bytes().to_vec(),
            3 => hex.bytes().flat_map(|b| [b, b]).collect(),
            _ => return None,
        };
        let byte = |i: usize| {
            std::str::from_utf8(&digits[i..i + 2])
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        };
        Some(Self([byte(0)?, byte(2)?, byte(4)?]))
    }

    /// Black or white, whichever reads better on this colour (WCAG relative luminance).
    pub fn text(self) -> Color {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        // Contrast with white (1.05 / (L + .05)) against black ((L + .05) / .05).
        if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
            Color([0xff; 3])
        } else {
            Color([0x11; 3])
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl Render for Color {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(&self.to_string());
    }
}

/// An image inlined as a `data:` URL: read once at start-up, so the pages never make a
/// request elsewhere (no third party learns who opened Pronote) and still show the logo
/// when the ENT is down.
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    data_url: String,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Logo({} bytes)", self.data_url.len())
    }
}

/// Why an image cannot be a logo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    #[error("is {0} bytes; a logo must be at most {MAX_LOGO_BYTES}")]
    TooLarge(usize),
    #[error("is not a PNG, JPEG, GIF, WebP or SVG image")]
    NotAnImage,
}

/// Largest logo inlined in every page.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

impl Logo {
    /// An image file's bytes; the type is read from its first bytes, not its name.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LogoError> {
        use base64::Engine as _;
        if bytes.len() > MAX_LOGO_BYTES {
            return Err(LogoError::TooLarge(bytes.len()));
        }
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
        let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            "image/jpeg"
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            "image/gif"
        } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            "image/webp"
        } else if head.contains("<svg") {
            // An SVG shown through <img> runs no script and loads nothing.
            "image/svg+xml"
        } else {
            return Err(LogoError::NotAnImage);
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(Self {
            data_url: format!("data:{mime};base64,{encoded}"),
        })
    }

    pub fn data_url(&self) -> &str {
        &self.data_url
    }
}

/// The style of every parent page: phone first, large tap targets, the brand colour.
const STYLE: Css = Css("*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\
body{margin:0;font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif;\
font-size:1.0625rem;line-height:1.5;color:#1a1a1a;background:#f3f4f6}\
header{display:flex;align-items:center;gap:.75rem;min-height:3.5rem;padding:.625rem 1rem;\
background:var(--brand);color:var(--on-brand)}\
header img{display:block;max-height:2.25rem;max-width:8rem;width:auto;height:auto}\
header span{font-weight:600;font-size:1.0625rem}\
main{max-width:34rem;margin:0 auto;padding:1.5rem 1rem 2.5rem}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}\
p{margin:0 0 1rem}\
ul.choices{list-style:none;margin:1.25rem 0;padding:0}\
ul.choices li{margin:0 0 .75rem}\
ul.choices button{display:block;width:100%;min-height:4rem;margin:0;padding:.875rem 1.125rem;\
font:inherit;text-align:left;color:inherit;background:#fff;border:2px solid var(--brand);\
border-radius:.75rem;cursor:pointer}\
ul.choices button:hover{background:#eef2f8}\
ul.choices button:focus-visible,a:focus-visible{outline:3px solid #111;outline-offset:2px}\
.name{display:block;font-size:1.25rem;font-weight:700}\
.detail{display:block;font-size:.9375rem;color:#444}\
.current{display:inline-block;margin-top:.25rem;padding:0 .5rem;font-size:.8125rem;\
border-radius:1rem;background:var(--brand);color:var(--on-brand)}\
nav{margin:1.5rem 0 0}\
nav a{display:block;margin:0 0 .75rem;padding:.875rem 1rem;text-align:center;font-weight:600;\
text-decoration:none;border-radius:.75rem;border:2px solid var(--brand);color:var(--brand);background:#fff}\
nav a.primary{background:var(--brand);color:var(--on-brand)}\
.code{margin-top:2rem;font-size:.8125rem;color:#555}\
.code code{font-size:inherit}");

/// What goes on one parent page besides the frame.
#[derive(Clone, Copy, Debug)]
pub struct ParentPage<'a> {
    /// `<title>` and the heading (`<h1>`).
    pub heading: &'a str,
    /// The page's own content, under the heading.
    pub body: &'a Markup,
    /// The next steps: (label, target). A target that is not a local path or an
    /// `http(s)` URL is left out ([`local_href`]); `""` reloads the page.
    pub actions: &'a [(&'a str, &'a str)],
    /// Whether the first action is the page's main step (a filled button). Not on the
    /// chooser, whose main steps are the children.
    pub primary: bool,
    /// The stable code and what an integrator reads with it, in small print.
    pub code: Option<(&'a str, &'a str)>,
    /// Where the page goes on by itself, at once (`<meta http-equiv="refresh">`: a new
    /// navigation in every browser, without JavaScript). An `http(s)` URL only.
    pub refresh: Option<&'a str>,
}

/// A whole page for a parent, in the ENT's colours.
pub fn parent_page(brand: &Brand, page: &ParentPage<'_>) -> String {
    let title = format!("{} — {}", page.heading, brand.ent_name);
    let refresh = page.refresh.and_then(super::web_href);
    let markup = html! {
        (DOCTYPE) "\n"
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(target) = refresh {
                    meta http-equiv="refresh" content={ "0;url=" (target) };
                }
                title { (title) }
                style {
                    ":root{--brand:" (brand.color) ";--on-brand:" (brand.color.text()) "}"
                    (STYLE)
                }
            }
            body {
                header {
                    @if let Some(logo) = &brand.logo {
                        img src=(logo.data_url()) alt="";
                    }
                    span { (brand.ent_name) }
                }
                main {
                    h1 { (page.heading) }
                    (page.body)
                    (actions(page.actions, page.primary))
                    @if let Some((code, meaning)) = page.code {
                        p.code { "Code : " code { (code) } " · " (meaning) }
                    }
                }
            }
        }
    };
    let mut text = markup.into_string();
    text.push('\n');
    text
}

fn actions(actions: &[(&str, &str)], primary: bool) -> Markup {
    html! {
        @if !actions.is_empty() {
            nav {
                @for (n, (label, target)) in actions.iter().enumerate() {
                    @let href = if target.is_empty() { Some(*target) } else { local_href(target) };
                    @if let Some(href) = href {
                        a href=(href) class=[(primary && n == 0).then_some("primary")] { (label) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    fn body() -> Markup {
        html! { p { "Texte." } }
    }

    fn render(brand: &Brand, actions: &[(&str, &str)], refresh: Option<&str>) -> String {
        parent_page(
            brand,
            &ParentPage {
                heading: "Titre",
                body: &body(),
                actions,
                primary: true,
                code: Some(("proxy.not_found", "404 Not Found")),
                refresh,
            },
        )
    }

    #[test]
    fn a_parent_page_has_a_viewport_a_heading_a_next_step_and_its_code() {
        let page = render(&Brand::default(), &[("Retour à l'ENT", "/")], None);
        for part in [
            "<html lang=\"fr\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<title>Titre — ENT</title>",
            "<header><span>ENT</span></header>",
            "<h1>Titre</h1>",
            "<a href=\"/\" class=\"primary\">Retour à l'ENT</a>",
            "<p class=\"code\">Code : <code>proxy.not_found</code> · 404 Not Found</p>",
            ":root{--brand:#1f4e8c;--on-brand:#ffffff}",
        ] {
            assert!(page.contains(part), "{part}: {page}");
        }
        assert!(!page.contains("<script") && !page.contains("refresh"));
    }

    #[test]
    fn colours_parse_and_pick_readable_text() {
        assert_eq!(
            Color::parse("#FFcc00").map(|c| c.to_string()).as_deref(),
            Some("#ffcc00")
        );
        assert_eq!(Color::parse("#fc0"), Color::parse("#ffcc00"));
        for bad in [
            "ffcc00",
            "#ffcc0",
            "#ggcc00",
            "red",
            "#ffcc00;}body{",
            "#ffc\u{e9}",
        ] {
            assert_eq!(Color::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Color::parse("#ffcc00").map(Color::text),
            Color::parse("#111111")
        );
        assert_eq!(Color::DEFAULT.text(), Color([0xff; 3]));
    }

    #[test]
    fn the_brand_is_escaped_and_the_logo_inlined() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let logo = Logo::from_bytes(png).unwrap();
        assert!(logo
            .data_url()
            .starts_with("data:image/png;base64,iVBORw0KGgo"));
        let reference = skeleton(&render(
            &Brand {
                logo: Some(logo.clone()),
                ..Brand::default()
            },
            &[("Retour", "/")],
            None,
        ));
        for hostile in HOSTILE {
            let brand = Brand {
                ent_name: hostile.to_owned(),
                ent_url: hostile.to_owned(),
                logo: Some(logo.clone()),
                ..Brand::default()
            };
            let page = render(&brand, &[("Retour", "/")], None);
            assert_eq!(skeleton(&page), reference, "{page}");
            assert!(page.contains(&escaped(hostile)));
        }
        assert_eq!(Logo::from_bytes(b"plain text"), Err(LogoError::NotAnImage));
        assert_eq!(
            Logo::from_bytes(&vec![0; MAX_LOGO_BYTES + 1]),
            Err(LogoError::TooLarge(MAX_LOGO_BYTES + 1))
        );
        assert!(Logo::from_bytes(
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>"
        )
        .unwrap()
        .data_url()
        .starts_with("data:image/svg+xml;base64,"));
    }

    #[test]
    fn links_and_refresh_are_web_or_local_only() {
        let page = render(
            &Brand::default(),
            &[
                ("a", "javascript:alert(1)"),
                ("b", "//evil.example/"),
                ("c", ""),
                ("d", "https://ent.example/"),
            ],
            Some("javascript:alert(1)"),
        );
        assert!(
            !page.contains("javascript") && !page.contains("evil"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"\">c</a>")
                && page.contains("<a href=\"https://ent.example/\">d</a>")
        );
        assert!(!page.contains("refresh"));
        let page = render(
            &Brand::default(),
            &[],
            Some("https://p.example/?a=1&b=\"2\""),
        );
        assert!(page.contains(
            "<meta http-equiv=\"refresh\" content=\"0;url=https://p.example/?a=1&amp;b=&quot;2&quot;\">"
        ));
        assert!(!page.contains("<nav"));
    }
}
