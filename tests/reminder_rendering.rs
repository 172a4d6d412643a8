//! A 催办通知书 as a person sees it: rendered by headless Chromium, in a CJK font, kept under
//! `target/reminders/` (`reminder.png`, `reminder.pdf`) for a person to look at. It prints on one
//! A4 page. Needs `chromium` and `fonts-noto-cjk` (scripts/test installs them); without them the
//! test fails saying what is missing.

use std::path::Path;

use hancha::present::reminder;
use hancha::proto::operator as pb;

/// The longest notice the registry can produce in practice: a long name, a township with a long
/// name, the longest reason.
fn longest_reminder() -> pb::Reminder {
    pb::Reminder {
        reference: "430703-2026Q4-000017".into(),
        name: "欧阳娜仁高娃·其其格".into(),
        resident_id: hancha::domain::resident_id::ResidentId::with_check_character("43132219900215004")
            .unwrap()
            .as_str()
            .to_string(),
        township: "430703002".into(),
        township_name: "红云街道".into(),
        origin_county: "431322".into(),
        origin_county_name: "新化县".into(),
        missing: "expired".into(),
        issued_at: Some(pbjson_types::Timestamp {
            seconds: 1_796_000_000,
            nanos: 0,
        }),
        issued_by: "yuxia-clerk".into(),
        deadline: "2026-12-31".into(),
        issued_now: true,
    }
}

#[test]
fn a_reminder_renders_on_one_a4_page_in_chromium() {
    let chromium = std::env::var("HANCHA_CHROMIUM").unwrap_or_else(|_| "chromium".to_string());
    let found = std::process::Command::new(&chromium).arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "{chromium} was not found: install it (Debian: apt-get install chromium fonts-noto-cjk; \
         scripts/test does) or set HANCHA_CHROMIUM"
    );
    let fonts = std::process::Command::new("fc-list").arg(":lang=zh").output();
    assert!(
        fonts.as_ref().is_ok_and(|o| !o.stdout.is_empty()),
        "no font for Chinese: install fonts-noto-cjk (scripts/test does)"
    );

    let scratch = tempfile::tempdir().unwrap();
    let item = longest_reminder();
    let page = scratch.path().join(reminder::file_name(&item));
    std::fs::write(&page, reminder::html(&item, "430703")).unwrap();

    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reminders");
    std::fs::create_dir_all(&kept).unwrap();
    let png = kept.join("reminder.png");
    let pdf = kept.join("reminder.pdf");
    let _ = std::fs::remove_file(&png);
    let _ = std::fs::remove_file(&pdf);
    let profile = tempfile::tempdir().unwrap();
    let render = |output: String| {
        let mut command = std::process::Command::new(&chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--window-size=794,1123", "--hide-scrollbars"])
            .arg(output)
            .arg(format!("file://{}", page.display()));
        command
    };
    for (what, flag) in [
        ("a screenshot", format!("--screenshot={}", png.display())),
        ("a PDF", format!("--print-to-pdf={}", pdf.display())),
    ] {
        let output = render(flag).output().expect("run chromium");
        assert!(
            output.status.success(),
            "chromium made no {what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let image = std::fs::read(&png).expect("the screenshot is written");
    assert!(image.starts_with(b"\x89PNG"), "a PNG");
    // Width and height from the IHDR chunk.
    let dimension = |at: usize| u32::from_be_bytes(image[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (794, 1123));
    let document = std::fs::read(&pdf).expect("the PDF is written");
    let text = String::from_utf8_lossy(&document);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert_eq!(pages, 1, "the notice fits on one page");
    // A4 is 595.28 × 841.89 points.
    let media_box: Vec<f64> = text
        .split("/MediaBox [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a MediaBox")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        (media_box[2] - 595.3).abs() < 1.0 && (media_box[3] - 841.9).abs() < 1.0,
        "A4, not {media_box:?}"
    );
    eprintln!("rendered: {} and {}", png.display(), pdf.display());
}
