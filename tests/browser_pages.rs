//! bonenfant's pages in a real browser (headless Chromium, `browser_support`): a parent
//! answers the chooser with a tap and with the keyboard and lands on that child in the
//! test Pronote; an error page reads on a phone with JavaScript off. Every test fails
//! on a Content-Security-Policy violation in the browser's log and leaves screenshots
//! in `target/browser-screenshots/`.

use crate::browser_support::{self, Browser, Key, Options, PHONE_WIDTH};
use crate::pin_support::Stack;

use bonenfant::sim::PupilRef;

const JULIEN: (&str, &str) = ("julien.durand", "demo-julien");
/// Julien's two children are both at this collège: he is asked which one he means.
const COLLEGE: &str = "0330101A";

fn chloe() -> PupilRef {
    PupilRef {
        uai: COLLEGE.to_owned(),
        eleve_id: "837003".to_owned(),
    }
}

fn lucas() -> PupilRef {
    PupilRef {
        uai: COLLEGE.to_owned(),
        eleve_id: "837004".to_owned(),
    }
}

/// Opens Julien's collège's Pronote and logs in at the ENT: bonenfant answers with its
/// chooser, which the browser is left on.
async fn julien_on_the_chooser(browser: &Browser, stack: &Stack) {
    browser.goto(&stack.pronote_page(COLLEGE)).await;
    browser.sign_in(JULIEN.0, JULIEN.1).await;
    browser.wait_for("form button[name=child]").await;
}

fn same_child(landed: &PupilRef, expected: &PupilRef) -> bool {
    landed.uai.eq_ignore_ascii_case(&expected.uai) && landed.eleve_id == expected.eleve_id
}

/// Issue 10, failure 1: the chooser's form had `form-action 'self'` and the POST
/// answered a 303 to Pronote's origin, which Chromium refuses to follow; the parent
/// stayed on the page. Here a tap on a child's name, on a phone with JavaScript off,
/// opens that child's Pronote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chooser_submit_reaches_pronote_in_chromium() {
    let Some(mut browser) = browser_support::open(
        "chooser_submit_reaches_pronote_in_chromium",
        Options::PHONE_WITHOUT_JAVASCRIPT,
    )
    .await
    else {
        return;
    };
    let stack = browser_support::retry_stack(7).await;
    julien_on_the_chooser(&browser, &stack).await;
    browser.screenshot("chooser-phone").await;
    let buttons = browser.find_all("form button[name=child]").await;
    assert_eq!(buttons.len(), 2, "one button per child");
    for button in &buttons {
        let (_, _, width, height) = browser.rect(button).await;
        assert!(
            height >= 48.0 && width >= 0.8 * PHONE_WIDTH as f64,
            "a child's button is a large tap target: {width}×{height}"
        );
    }
    let lucas_button = browser
        .find_by_text("form button[name=child]", "Lucas")
        .await
        .expect("Lucas is offered by name");
    assert!(browser.text(&lucas_button).await.contains("Classe de 5A"));
    browser.click(&lucas_button).await;
    let landed = browser.landed().await;
    assert!(same_child(&landed, &lucas()), "landed on {landed:?}");
    browser.screenshot("landed").await;
    browser.quit().await;
    stack.stop().await;
}

/// The same with the keyboard only: Tab to the child's button, Enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chooser_submitted_with_the_keyboard_lands_on_the_child() {
    let Some(mut browser) = browser_support::open(
        "chooser_submitted_with_the_keyboard_lands_on_the_child",
        Options::DESKTOP,
    )
    .await
    else {
        return;
    };
    let stack = browser_support::retry_stack(7).await;
    julien_on_the_chooser(&browser, &stack).await;
    browser.tab_to("Chloé", 10).await;
    browser.screenshot("chooser-focus").await;
    browser.press(Key::Enter).await;
    let landed = browser.landed().await;
    assert!(same_child(&landed, &chloe()), "landed on {landed:?}");
    browser.quit().await;
    stack.stop().await;
}

/// An error page a parent may meet (404 under bonenfant's prefix, 502 when the ENT is
/// down) on a phone with JavaScript off: laid out for the phone's width, a French
/// heading, a way back, the code in small print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_read_on_a_phone_without_javascript() {
    let Some(browser) = browser_support::open(
        "error_pages_read_on_a_phone_without_javascript",
        Options::PHONE_WITHOUT_JAVASCRIPT,
    )
    .await
    else {
        return;
    };
    let stack = browser_support::retry_stack(7).await;
    let not_found = stack.proxy_url("/bonenfant/nulle-part");
    let ent_login = stack.proxy_url("/cas/login");
    let Stack {
        ent,
        proxy,
        pronote,
        ..
    } = stack;
    browser.goto(&not_found).await;
    check_error_page(&browser, "Page introuvable", "proxy.not_found", false).await;
    browser.screenshot("404-phone").await;

    let _ = ent.stop().await;
    browser.goto(&ent_login).await;
    check_error_page(
        &browser,
        "L'ENT ne répond pas correctement",
        "proxy.upstream_connect",
        true,
    )
    .await;
    browser.screenshot("502-phone").await;
    browser.quit().await;
    let _ = pronote.stop().await;
    let _ = proxy.stop().await;
}

/// What every error page must show a parent on a phone.
async fn check_error_page(browser: &Browser, heading: &str, code: &str, try_again: bool) {
    let h1 = browser.wait_for("h1").await;
    assert_eq!(browser.text(&h1).await, heading);
    let small = browser.wait_for(".code").await;
    assert!(browser.text(&small).await.contains(code));
    let back = browser
        .find_by_text("nav a", "Retour à l'ENT")
        .await
        .expect("a way back to the ENT");
    let (_, _, _, height) = browser.rect(&back).await;
    assert!(height >= 44.0, "the way back is a tap target: {height}");
    assert_eq!(
        browser.find_by_text("nav a", "Réessayer").await.is_some(),
        try_again
    );
    // Laid out for the phone, not a desktop page shrunk to fit (no viewport meta).
    let page = browser.wait_for("html").await;
    let (_, _, width, _) = browser.rect(&page).await;
    assert!(
        width <= PHONE_WIDTH as f64,
        "the page is {width} CSS pixels wide on a {PHONE_WIDTH}-pixel phone"
    );
}
