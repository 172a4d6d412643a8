//! Charts of the indicators as inline SVG drawn on the server: no script, no CDN, printable, and
//! readable without colour (every bar and point carries its figures in a `<title>`, and the page
//! repeats them in a table).
//!
//! Two shapes only: horizontal bars per township against the 100% target ([`bars`]), and the
//! county's rates over a few periods ([`trend`]). Rates are drawn as the table shows them:
//! numerator over denominator, nothing for nobody concerned (0/0 is not 0%).

use maud::{Markup, html};

use crate::domain::report::Indicator;

/// Width of every chart, in SVG units (the page scales it down on a narrow screen).
const WIDTH: f64 = 640.0;
/// Where the bars start: the township names are written left of it.
const LABEL_WIDTH: f64 = 190.0;
/// The length of a bar at 100%.
const PLOT_WIDTH: f64 = 360.0;
/// One township's row.
const ROW_HEIGHT: f64 = 22.0;
/// A bar's thickness.
const BAR_HEIGHT: f64 = 14.0;
/// Room above the rows for the scale.
const TOP: f64 = 22.0;
/// The widest label, in half-width character cells (a Chinese character takes two): what fits
/// in [`LABEL_WIDTH`] at 12px.
const LABEL_CELLS: usize = 28;
/// The colours of the trend's lines, one per indicator in the report's order (distinct also in
/// grey print: each line has its own dash pattern too).
const LINE_STYLES: [(&str, &str); 5] = [
    ("#0b5394", ""),
    ("#067647", "6 3"),
    ("#b54708", "2 3"),
    ("#7a2e98", "8 3 2 3"),
    ("#b42318", "1 1"),
];

/// One bar: a township (or the county) and its indicator.
#[derive(Clone, Debug)]
pub struct Bar {
    /// The township's code, for `data-township` (empty for the county).
    pub code: String,
    /// What the row is called: code and name.
    pub label: String,
    /// Its figures.
    pub indicator: Indicator,
}

/// One series of the trend: an indicator's name and its figures per period, in the order of the
/// periods.
#[derive(Clone, Debug)]
pub struct Series {
    /// The indicator's Chinese name.
    pub name: String,
    /// Per period, in order.
    pub points: Vec<Indicator>,
}

/// How long a bar of `indicator` is: `None` when nobody is concerned, at most [`PLOT_WIDTH`]
/// (a numerator above its denominator is drawn at the target, and said in the title).
pub fn bar_length(indicator: Indicator) -> Option<f64> {
    let rate = indicator.rate()?;
    Some(PLOT_WIDTH * rate.clamp(0.0, 1.0))
}

/// `label` cut to fit the label column, with `…` when cut (the whole label is in the title).
pub fn fitted(label: &str) -> String {
    if label.chars().map(cell_width).sum::<usize>() <= LABEL_CELLS {
        return label.to_string();
    }
    let mut cells = 0;
    let mut out: String = label
        .chars()
        .take_while(|&c| {
            cells += cell_width(c);
            cells < LABEL_CELLS
        })
        .collect();
    out.push('…');
    out
}

/// Half-width cells taken by `c`: two for CJK and fullwidth forms.
fn cell_width(c: char) -> usize {
    let wide = matches!(
        u32::from(c),
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD
    );
    if wide { 2 } else { 1 }
}

/// A number for an SVG attribute: one decimal, no trailing `.0`.
fn at(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// Horizontal bars, one per entry of `bars`, for the indicator called `name` (`key` is its CSV
/// column prefix, for `data-indicator`), with the 100% target as a line.
pub fn bars(key: &str, name: &str, bars: &[Bar]) -> Markup {
    let height = TOP + ROW_HEIGHT * bars.len() as f64 + 8.0;
    let target = LABEL_WIDTH + PLOT_WIDTH;
    let title_id = format!("chart-{key}-title");
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
            id={ "chart-" (key) } data-chart="bars" data-indicator=(key)
            width=(at(WIDTH)) height=(at(height)) viewBox={ "0 0 " (at(WIDTH)) " " (at(height)) }
            font-size="12" {
            title id=(title_id) { (name) " — 各乡镇对照 100% 目标 per township against the 100% target" }
            @for (tick, text) in [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")] {
                @let x = LABEL_WIDTH + PLOT_WIDTH * tick;
                line x1=(at(x)) x2=(at(x)) y1=(at(TOP - 4.0)) y2=(at(height - 6.0))
                    stroke=(if tick == 1.0 { "#b42318" } else { "#d9e2ec" })
                    stroke-dasharray=(if tick == 1.0 { "4 3" } else { "" })
                    data-target=[(tick == 1.0).then_some("100")] {}
                text x=(at(x)) y=(at(TOP - 8.0)) text-anchor="middle" fill="#616e7c" {
                    (text) @if tick == 1.0 { " 目标 target" }
                }
            }
            @for (row, bar) in bars.iter().enumerate() {
                @let y = TOP + ROW_HEIGHT * row as f64;
                @let middle = y + ROW_HEIGHT / 2.0 + 4.0;
                g.bar data-township=(bar.code) data-numerator=(bar.indicator.numerator)
                    data-denominator=(bar.indicator.denominator) {
                    title { (bar.label) " · " (name) " " (bar.indicator)
                        @if bar.indicator.denominator == 0 { " 无统计对象 nobody concerned" } }
                    text x=(at(LABEL_WIDTH - 6.0)) y=(at(middle)) text-anchor="end" { (fitted(&bar.label)) }
                    @match bar_length(bar.indicator) {
                        Some(length) => {
                            rect x=(at(LABEL_WIDTH)) y=(at(y + (ROW_HEIGHT - BAR_HEIGHT) / 2.0))
                                width=(at(length)) height=(at(BAR_HEIGHT))
                                fill=(if bar.indicator.numerator >= bar.indicator.denominator { "#067647" } else { "#0b5394" }) {}
                            text x=(at(target + 6.0)) y=(at(middle)) { (bar.indicator.percent()) }
                        }
                        None => {
                            text x=(at(LABEL_WIDTH + 4.0)) y=(at(middle)) fill="#616e7c" { "— (0/0)" }
                        }
                    }
                }
            }
        }
    }
}

/// The rates of `series` over `periods` (their labels, in order), one line per indicator, with
/// the 100% target; a period where nobody was concerned breaks the line.
pub fn trend(id: &str, title: &str, periods: &[String], series: &[Series]) -> Markup {
    const LEFT: f64 = 48.0;
    const PLOT_HEIGHT: f64 = 160.0;
    const LEGEND_ROW: f64 = 18.0;
    let plot_width = WIDTH - LEFT - 40.0;
    let height = TOP + PLOT_HEIGHT + 28.0 + LEGEND_ROW * series.len() as f64;
    let x_of = |index: usize| {
        if periods.len() <= 1 {
            LEFT + plot_width / 2.0
        } else {
            LEFT + plot_width * index as f64 / (periods.len() - 1) as f64
        }
    };
    let y_of = |rate: f64| TOP + PLOT_HEIGHT * (1.0 - rate.clamp(0.0, 1.0));
    let title_id = format!("{id}-title");
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
            id=(id) data-chart="trend"
            width=(at(WIDTH)) height=(at(height)) viewBox={ "0 0 " (at(WIDTH)) " " (at(height)) }
            font-size="12" {
            title id=(title_id) { (title) }
            @for (tick, text) in [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")] {
                line x1=(at(LEFT)) x2=(at(LEFT + plot_width)) y1=(at(y_of(tick))) y2=(at(y_of(tick)))
                    stroke=(if tick == 1.0 { "#b42318" } else { "#d9e2ec" })
                    stroke-dasharray=(if tick == 1.0 { "4 3" } else { "" })
                    data-target=[(tick == 1.0).then_some("100")] {}
                text x=(at(LEFT - 6.0)) y=(at(y_of(tick) + 4.0)) text-anchor="end" fill="#616e7c" { (text) }
            }
            @for (index, period) in periods.iter().enumerate() {
                text x=(at(x_of(index))) y=(at(TOP + PLOT_HEIGHT + 18.0)) text-anchor="middle" { (period) }
            }
            @for (number, one) in series.iter().enumerate() {
                @let (colour, dashes) = LINE_STYLES[number % LINE_STYLES.len()];
                g.series data-series=(one.name) {
                    @for segment in segments(&one.points) {
                        polyline fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=(dashes)
                            points=(segment.iter().map(|&(index, rate)| format!("{},{}", at(x_of(index)), at(y_of(rate)))).collect::<Vec<_>>().join(" ")) {}
                    }
                    @for (index, indicator) in one.points.iter().enumerate() {
                        @if let Some(rate) = indicator.rate() {
                            circle.point cx=(at(x_of(index))) cy=(at(y_of(rate))) r="3.5" fill=(colour)
                                data-period=[periods.get(index)] data-numerator=(indicator.numerator)
                                data-denominator=(indicator.denominator) {
                                title { (one.name) " " (periods.get(index).map(String::as_str).unwrap_or("")) ": " (indicator) }
                            }
                        }
                    }
                    @let legend_y = TOP + PLOT_HEIGHT + 28.0 + LEGEND_ROW * number as f64 + 10.0;
                    line x1=(at(LEFT)) x2=(at(LEFT + 28.0)) y1=(at(legend_y - 4.0)) y2=(at(legend_y - 4.0))
                        stroke=(colour) stroke-width="2" stroke-dasharray=(dashes) {}
                    text x=(at(LEFT + 36.0)) y=(at(legend_y)) { (one.name) }
                }
            }
        }
    }
}

/// The runs of consecutive points with a rate, as (period index, rate): a line is drawn through
/// each run of two or more, and broken where nobody was concerned.
fn segments(points: &[Indicator]) -> Vec<Vec<(usize, f64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for (index, indicator) in points.iter().enumerate() {
        match indicator.rate() {
            Some(rate) => current.push((index, rate)),
            None => {
                if current.len() > 1 {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if current.len() > 1 {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(code: &str, label: &str, numerator: u64, denominator: u64) -> Bar {
        Bar {
            code: code.into(),
            label: label.into(),
            indicator: Indicator::new(numerator, denominator),
        }
    }

    /// The attribute `name` of the first element that has it from the element marked `marker`
    /// on (that element included).
    fn attribute<'a>(svg: &'a str, marker: &str, name: &str) -> &'a str {
        let marked = svg.find(marker).unwrap_or_else(|| panic!("{marker} in {svg}"));
        let rest = &svg[svg[..marked].rfind('<').unwrap()..];
        let at = rest.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = rest[at..].find('"').unwrap();
        &rest[at..at + end]
    }

    #[test]
    fn bars_are_scaled_to_the_target_line() {
        assert_eq!(bar_length(Indicator::new(1, 2)), Some(PLOT_WIDTH / 2.0));
        assert_eq!(bar_length(Indicator::new(4, 4)), Some(PLOT_WIDTH));
        assert_eq!(bar_length(Indicator::new(0, 7)), Some(0.0));
        // more than everyone (a person counted twice upstream) stops at the target
        assert_eq!(bar_length(Indicator::new(5, 4)), Some(PLOT_WIDTH));

        let svg = bars(
            "registration",
            "登记率",
            &[
                bar("430703001", "430703001 玉霞街道", 1, 4),
                bar("430703002", "430703002 红云街道", 3, 3),
            ],
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert_eq!(
            attribute(&svg, "data-township=\"430703001\"", "width"),
            at(PLOT_WIDTH / 4.0)
        );
        assert_eq!(
            attribute(&svg, "data-township=\"430703002\"", "width"),
            at(PLOT_WIDTH)
        );
        // the target line is where a full bar ends
        assert_eq!(
            attribute(&svg, "data-target=\"100\"", "x1"),
            at(LABEL_WIDTH + PLOT_WIDTH)
        );
        assert!(
            svg.contains("<title>430703001 玉霞街道 · 登记率 25.0% (1/4)</title>"),
            "{svg}"
        );
    }

    #[test]
    fn nobody_concerned_draws_no_bar_and_says_so() {
        let svg = bars(
            "check_report",
            "查环查孕结果通报率",
            &[bar("430703003", "430703003 某乡", 0, 0)],
        )
        .into_string();
        assert!(!svg.contains("<rect"), "{svg}");
        assert!(svg.contains("— (0/0)"), "{svg}");
        assert!(svg.contains("无统计对象 nobody concerned"), "{svg}");
    }

    #[test]
    fn long_township_names_are_cut_in_the_label_and_whole_in_the_title() {
        let long = "430703001 一个名字非常非常非常非常长的乡镇街道办事处";
        let label = fitted(long);
        assert!(label.ends_with('…'), "{label}");
        assert!(
            label.chars().map(cell_width).sum::<usize>() <= LABEL_CELLS,
            "{label}"
        );
        assert_eq!(fitted("430703001 玉霞街道"), "430703001 玉霞街道");
        let svg = bars("registration", "登记率", &[bar("430703001", long, 1, 1)]).into_string();
        assert!(svg.contains(&format!("<title>{long} · 登记率")), "{svg}");
        assert!(svg.contains(&format!(">{label}</text>")), "{svg}");
    }

    #[test]
    fn names_are_escaped() {
        let svg = bars("x", "<率>", &[bar("1", "a<b>&c", 1, 2)]).into_string();
        assert!(!svg.contains("a<b>"), "{svg}");
        assert!(svg.contains("a&lt;b&gt;&amp;c"), "{svg}");
    }

    #[test]
    fn the_trend_breaks_where_nobody_was_concerned() {
        let periods: Vec<String> = ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
            .map(String::from)
            .to_vec();
        let series = [Series {
            name: "登记率".into(),
            points: vec![
                Indicator::new(1, 2),
                Indicator::new(2, 2),
                Indicator::new(0, 0),
                Indicator::new(1, 4),
            ],
        }];
        let svg = trend("trend", "趋势", &periods, &series).into_string();
        // one line through Q1–Q2; Q4 stands alone as a point
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        assert!(svg.contains("<title>登记率 2026Q4: 25.0% (1/4)</title>"), "{svg}");
        // 100% is at the top of the plot, 0% at the bottom
        let full = attribute(&svg, "data-period=\"2026Q2\"", "cy");
        let quarter = attribute(&svg, "data-period=\"2026Q4\"", "cy");
        assert_eq!(full, at(TOP));
        assert_eq!(quarter, at(TOP + 160.0 * 0.75));
    }
}
