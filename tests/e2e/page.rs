//! The web page in a real browser (headless Chromium): submit a job with a passing
//! and a failing test and watch both rows arrive, open the job from the list,
//! see an error next to its field, cancel a sleeping job, read it on a narrow
//! screen. Screenshots go to a folder the test prints.

use optimus_tests::browser::Browser;
use serde_json::json;

use crate::helpers::stack;

/// The verdict cells of the results table, in order (a JavaScript expression).
const VERDICTS: &str =
    "[...document.querySelectorAll('#results tbody td.verdict')].map(td => td.textContent).join(',')";
/// The job's status badge.
const STATUS: &str = "document.querySelector('#job-status').textContent";
/// What the A+B job with one wrong expectation shows.
const ROWS: &str = "accepted,wrong answer";

#[tokio::test(flavor = "multi_thread")]
async fn the_page_submits_follows_lists_and_cancels_jobs() {
    let mut stack = stack(&["python"]).await;
    let browser = Browser::start(1280, 900).await;
    println!("screenshots: {}", browser.shots.display());
    browser.goto(&format!("{}/", stack.base)).await;
    browser.wait_for("the languages", "return document.querySelector('#language option[value=python]') !== null").await;

    // A+B with one right and one wrong expectation, submitted from the keyboard.
    browser
        .js(
            "const s = document.querySelector('#source'); s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
            json!(["import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n"]),
        )
        .await;
    // The editor numbers its lines and colours the language's keywords.
    let editor = browser
        .js(
            "return [document.querySelector('.editor .gutter').textContent, \
             [...document.querySelectorAll('.editor .highlight .hl-k')].map(k => k.textContent).join(',')]",
            json!([]),
        )
        .await;
    assert_eq!(editor, json!(["1\n2\n3\n4\n5", "import,for,in"]), "{editor}");
    browser.screenshot("form").await;
    browser.click("#add-test").await;
    browser.type_into("#test-list .test:nth-child(2) .input", "2 2").await;
    browser.type_into("#test-list .test:nth-child(2) .expected", "5").await;
    browser.type_into("#source", "\u{E009}\u{E007}\u{E000}").await;
    browser.wait_for("the job's end", &format!("return {STATUS} === 'completed'")).await;
    let verdicts = browser.js(&format!("return {VERDICTS}"), json!([])).await;
    assert_eq!(verdicts, ROWS);
    let summary = browser.js("return document.querySelector('#job-summary').textContent", json!([])).await;
    assert!(summary.as_str().unwrap().contains("1 of 2 tests passed"), "{summary}");
    let shot = browser.screenshot("job-view").await;
    println!("job view: {}", shot.display());
    let id = browser.js("return document.querySelector('#job-id').textContent", json!([])).await;
    let id = id.as_str().unwrap().to_string();
    // The same rows the API stored.
    let stored = stack.get(&id).await;
    assert_eq!(stored["result"]["test_results"][1]["verdict"], "wrong_answer");

    // A fresh page: the job is in the list, and its link opens it (a shareable URL).
    browser.goto(&format!("{}/", stack.base)).await;
    let link = format!("#recent-list a[data-job-id='{id}']");
    browser.wait_for("the job in the list", &format!("return document.querySelector(\"{link}\") !== null")).await;
    browser.click(&link).await;
    browser.wait_for("the listed job's rows", &format!("return {VERDICTS} === '{ROWS}'")).await;
    let url = browser.js("return location.href", json!([])).await;
    assert!(url.as_str().unwrap().ends_with(&format!("#/jobs/{id}")), "{url}");

    // An error shows next to the field it names.
    browser.goto(&format!("{}/#/", stack.base)).await;
    browser.wait_for("the form", "return document.querySelector('#language option[value=python]') !== null").await;
    browser.js("document.querySelector('#source').value = ''", json!([])).await;
    browser.click("#submit").await;
    let message = browser
        .wait_for(
            "the source's error",
            "return document.querySelector('.field-error[data-field=source_code]').textContent",
        )
        .await;
    assert!(message.as_str().unwrap().contains("source_code"), "{message}");
    browser.screenshot("field-error").await;

    // A sleeping job, cancelled from its page.
    browser
        .js(
            "const s = document.querySelector('#source'); s.value = arguments[0]; s.dispatchEvent(new Event('input'));\
             document.querySelector('#timeout').value = '20000';",
            json!(["import time\ntime.sleep(30)\n"]),
        )
        .await;
    browser.click("#submit").await;
    browser.wait_for("the job running", &format!("return {STATUS} === 'running'")).await;
    browser.click("#cancel").await;
    browser.wait_for("the job cancelled", &format!("return {STATUS} === 'cancelled'")).await;
    let cancel_hidden = browser.js("return document.querySelector('#cancel').hidden", json!([])).await;
    assert_eq!(cancel_hidden, true);
    browser.screenshot("cancelled").await;

    // A phone-sized window: nothing runs off the side.
    browser.resize(390, 844).await;
    browser.goto(&format!("{}/#/jobs/{id}", stack.base)).await;
    browser.wait_for("the job on a narrow screen", &format!("return {VERDICTS} === '{ROWS}'")).await;
    let overflow = browser.js("return document.documentElement.scrollWidth - window.innerWidth", json!([])).await;
    assert!(overflow.as_i64().unwrap() <= 0, "the page is wider than a phone: {overflow} px too wide");
    browser.screenshot("narrow").await;

    browser.close().await;
    stack.stop().await;
}
