//! The report page: one HTML file with its style, its charts (inline SVG) and
//! its data (inline JSON), so it opens offline and survives being mailed.
//!
//! A Content-Security-Policy forbids every load (scripts, styles, fonts,
//! images, frames) but the inline style: should anything ever reference the
//! network, the browser refuses it and says so on its console, which the
//! browser test watches. Titles and labels are HTML text (Chinese renders with
//! the reader's fonts; nothing is embedded). Every value from the database is
//! escaped; only `http(s)` article URLs become links.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use super::charts::{self, Series, Size};
use super::{AccountReport, Report};

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px; color: #1a1a1a; background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "PingFang SC",
    "Microsoft YaHei", sans-serif; }
main { max-width: 1000px; margin: 0 auto; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.35em; margin: 1.6em 0 .4em; padding-top: .6em; border-top: 3px solid #0072b2; }
h3 { font-size: 1.1em; margin: 1.4em 0 .3em; }
.sub { color: #555; margin: 0 0 1em; }
.en { color: #555; font-weight: normal; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px; margin: .6em 0; }
.figure { border: 1px solid #ccc; border-radius: 6px; padding: 8px 10px; }
.figure b { display: block; font-size: 1.35em; }
.figure span { color: #555; font-size: .85em; }
figure.chart { margin: .6em 0 1.2em; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { display: block; width: 100%; height: auto; max-width: 760px; }
figure.chart .narrow { display: none; }
figcaption { color: #555; font-size: .85em; }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
a { color: #0b5394; }
.note { background: #f3f3f3; border-left: 4px solid #888; padding: 6px 10px; }
.bad { font-weight: bold; }
footer { margin-top: 2em; color: #666; font-size: .8em; }
@media (max-width: 600px) {
  body { padding: 10px; font-size: 14px; }
  figure.chart .wide { display: none; }
  figure.chart .narrow { display: block; }
  th, td { padding: 3px 4px; }
}
@page { size: A4; margin: 12mm; }
@media print {
  body { padding: 0; font-size: 10pt; }
  main { max-width: none; }
  figure.chart .wide { display: block; }
  figure.chart .narrow { display: none; }
  h2 { break-before: page; }
  h2.first { break-before: auto; }
  h3, table, .figures { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Renders the whole page.
pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut out = String::with_capacity(256 * 1024);
    let title = format!("wxcube 报告 {} – {}", report.from, report.to);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"generator\" content=\"wxcube {}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    )?;
    write!(
        out,
        "<h1>公众号数据报告 <span class=\"en\">Official Account report</span></h1>\n\
         <p class=\"sub\">{} – {} · {} · 生成于 generated {}</p>\n",
        report.from,
        report.to,
        plural(report.accounts.len(), "account"),
        esc(&report.generated_at)
    )?;
    if report.accounts.iter().all(AccountReport::is_empty) {
        writeln!(
            out,
            "<p class=\"note\" id=\"empty-period\">本期无数据 · The database holds no figures for {} – {}. \
             Run <code>wxcube backfill --from {} --to {}</code> to fetch them.</p>",
            report.from, report.to, report.from, report.to
        )?;
    }
    for (i, account) in report.accounts.iter().enumerate() {
        render_account(&mut out, account, i == 0)?;
    }
    write!(
        out,
        "<footer>wxcube {} · 数据来自微信公众号 datacube 接口 · 空缺的日期表示没有数据 (gaps are days without data, never zeros).</footer>\n</main>\n",
        env!("CARGO_PKG_VERSION")
    )?;
    write!(
        out,
        "<script type=\"application/json\" id=\"wxcube-report-data\">{}</script>\n</body>\n</html>\n",
        json_for_script(report)?
    )?;
    Ok(out)
}

/// The data as JSON that cannot end its `<script>` element early: `<`, `>`
/// and `&` are written as `\u003c`, `\u003e`, `\u0026` (still the same JSON).
pub fn json_for_script(report: &Report) -> anyhow::Result<String> {
    let json = serde_json::to_string(report)?;
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

fn render_account(out: &mut String, a: &AccountReport, first: bool) -> anyhow::Result<()> {
    let label = match &a.name {
        Some(name) => format!("{} <span class=\"en\">{}</span>", esc(name), esc(&a.appid)),
        None => esc(&a.appid),
    };
    write!(
        out,
        "<section class=\"account\" data-appid=\"{}\">\n<h2{}>{label}</h2>\n<p class=\"sub\">{} – {}</p>\n",
        esc(&a.appid),
        if first { " class=\"first\"" } else { "" },
        a.from,
        a.to
    )?;
    if a.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">本期无数据 · No figures for this account from {} to {}.</p>",
            a.from, a.to
        )?;
        health(out, a)?;
        out.push_str("</section>\n");
        return Ok(());
    }
    key_figures(out, a)?;
    followers(out, a)?;
    reads(out, a)?;
    top_articles(out, a)?;
    shares(out, a)?;
    hours(out, a)?;
    health(out, a)?;
    out.push_str("</section>\n");
    Ok(())
}

fn n_days(a: &AccountReport) -> usize {
    ((a.to - a.from).num_days() + 1).max(0) as usize
}

/// One value per day of the period from `(date, value)` pairs.
fn per_day(
    a: &AccountReport,
    points: impl Iterator<Item = (NaiveDate, Option<i64>)>,
) -> Vec<Option<f64>> {
    let mut values = vec![None; n_days(a)];
    for (date, value) in points {
        let i = (date - a.from).num_days();
        if let (Ok(i), Some(v)) = (usize::try_from(i), value)
            && let Some(slot) = values.get_mut(i)
        {
            *slot = Some(v as f64);
        }
    }
    values
}

fn key_figures(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    let latest_total = a
        .followers
        .iter()
        .rev()
        .find_map(|f| f.cumulate_user.map(|c| (f.date, c)));
    let net: i64 = a.followers.iter().filter_map(|f| f.net_user).sum();
    let readers: i64 = a.reads.iter().map(|r| r.read_user).sum();
    let days_with_reads = a.reads.len();
    out.push_str("<div class=\"figures\">\n");
    match latest_total {
        Some((date, total)) => {
            figure(out, &group(total), &format!("粉丝总数 followers on {date}"))?
        }
        None => figure(out, "–", "粉丝总数 followers: no data")?,
    }
    figure(
        out,
        &signed(net),
        "净增粉丝 net new followers (days with data)",
    )?;
    figure(
        out,
        &group(readers),
        &format!(
            "阅读人数 readers, sum over {}",
            plural(days_with_reads, "day")
        ),
    )?;
    figure(
        out,
        &a.top_articles.len().to_string(),
        "热门文章 top articles listed (at most ten)",
    )?;
    out.push_str("</div>\n");
    Ok(())
}

fn figure(out: &mut String, value: &str, label: &str) -> anyhow::Result<()> {
    writeln!(
        out,
        "<div class=\"figure\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )?;
    Ok(())
}

fn chart(
    out: &mut String,
    id: &str,
    caption: &str,
    wide: &str,
    narrow: &str,
) -> anyhow::Result<()> {
    write!(
        out,
        "<figure class=\"chart\" id=\"{id}\">\n<div class=\"wide\">{wide}</div>\n<div class=\"narrow\">{narrow}</div>\n<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    )?;
    Ok(())
}

fn line_chart(
    out: &mut String,
    a: &AccountReport,
    id: &str,
    series: &[Series],
    unit: &str,
    caption: &str,
) -> anyhow::Result<()> {
    // A running total is drawn around its values, counts from zero.
    let from_zero = id != "followers-total";
    let wide = charts::line_chart(a.from, series, unit, from_zero, Size::Wide)?;
    let narrow = charts::line_chart(a.from, series, unit, from_zero, Size::Narrow)?;
    chart(out, &format!("{id}-{}", a.appid), caption, &wide, &narrow)
}

/// A series' values by date, as read from the model.
type Points = Vec<(NaiveDate, Option<i64>)>;

const GAP_NOTE: &str = "Grey bands and breaks in a line are days without data.";

fn followers(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str("<h3>粉丝 <span class=\"en\">Followers</span></h3>\n");
    if a.followers.is_empty() {
        return no_data(out, "getusersummary, getusercumulate");
    }
    let f = &a.followers;
    let series = [
        Series {
            label: "new 新增".into(),
            values: per_day(a, f.iter().map(|d| (d.date, d.new_user))),
        },
        Series {
            label: "cancelled 取消".into(),
            values: per_day(a, f.iter().map(|d| (d.date, d.cancel_user))),
        },
        Series {
            label: "net 净增".into(),
            values: per_day(a, f.iter().map(|d| (d.date, d.net_user))),
        },
    ];
    line_chart(
        out,
        a,
        "followers-daily",
        &series,
        "followers per day (人)",
        &format!("New, cancelled and net followers per day (v_followers). {GAP_NOTE}"),
    )?;
    let total = [Series {
        label: "total 累计".into(),
        values: per_day(a, f.iter().map(|d| (d.date, d.cumulate_user))),
    }];
    line_chart(
        out,
        a,
        "followers-total",
        &total,
        "followers (人)",
        &format!("Total followers at the end of each day (getusercumulate). {GAP_NOTE}"),
    )
}

fn reads(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str("<h3>阅读 <span class=\"en\">Readers per day</span></h3>\n");
    if a.reads.is_empty() && a.reads_by_channel.is_empty() {
        return no_data(out, "getbizsummary or getuserread");
    }
    let mut sources: Vec<&str> = a.reads.iter().map(|r| r.source).collect();
    sources.dedup();
    let overall = [Series {
        label: "all channels 全部".into(),
        values: per_day(a, a.reads.iter().map(|r| (r.date, Some(r.read_user)))),
    }];
    line_chart(
        out,
        a,
        "reads",
        &overall,
        "readers (人)",
        &format!(
            "Readers per day over all channels ({}). {GAP_NOTE}",
            sources.join(" and ")
        ),
    )?;
    for (source, what) in [
        (
            "getbizsummary",
            "scene 场景 (getbizsummary; scenes overlap, so they do not add up to the total)",
        ),
        ("getuserread", "channel 渠道 (getuserread)"),
    ] {
        let mut by_name: BTreeMap<(&str, &str), Points> = BTreeMap::new();
        for c in a.reads_by_channel.iter().filter(|c| c.source == source) {
            by_name
                .entry((c.code.as_str(), c.name.as_str()))
                .or_default()
                .push((c.date, c.read_user));
        }
        if by_name.is_empty() {
            continue;
        }
        let series: Vec<Series> = by_name
            .into_iter()
            .map(|((code, name), points)| Series {
                label: if code == name || code.parse::<i64>().is_ok() {
                    name.to_string()
                } else {
                    format!("{name} {code}")
                },
                values: per_day(a, points.into_iter()),
            })
            .collect();
        line_chart(
            out,
            a,
            &format!("reads-{source}"),
            &series,
            "readers (人)",
            &format!("Readers per day by {what}. {GAP_NOTE}"),
        )?;
    }
    Ok(())
}

fn top_articles(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str(
        "<h3>热门文章 <span class=\"en\">Top articles published in the period</span></h3>\n",
    );
    if a.top_articles.is_empty() {
        return no_data(out, "getarticletotaldetail or getarticletotal");
    }
    out.push_str(
        "<div class=\"table\"><table id=\"top-articles\">\n<thead><tr><th>#</th><th>标题 title</th><th>发布 published</th>\
         <th class=\"n\">阅读 readers</th><th class=\"n\">分享 sharers</th><th class=\"n\">完读率 completion</th></tr></thead>\n<tbody>\n",
    );
    for (i, t) in a.top_articles.iter().enumerate() {
        let title = esc(t.title.as_deref().unwrap_or(&t.msgid));
        let cell = match t.url.as_deref().filter(|u| is_web_url(u)) {
            Some(url) => format!("<a href=\"{}\">{title}</a>", esc(url)),
            None => title,
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{cell}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            i + 1,
            t.publish_date,
            opt(t.read_user),
            opt(t.share_user),
            t.read_finish_rate
                .map_or("–".to_string(), |r| format!("{:.1} %", r * 100.0)),
        )?;
    }
    out.push_str(
        "</tbody></table></div>\n<p class=\"sub\">By the latest cumulative figures (getarticletotaldetail where known, else getarticletotal).</p>\n",
    );
    Ok(())
}

fn shares(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str("<h3>分享 <span class=\"en\">Shares</span></h3>\n");
    if a.shares_by_scene.is_empty() && a.shares_total.is_empty() {
        return no_data(out, "getusershare or getbizsummary");
    }
    let mut series = Vec::new();
    if !a.shares_total.is_empty() {
        series.push(Series {
            label: "all scenes 全部 (getbizsummary)".into(),
            values: per_day(
                a,
                a.shares_total.iter().map(|s| (s.date, Some(s.share_user))),
            ),
        });
    }
    let mut by_scene: BTreeMap<(i64, &str), Points> = BTreeMap::new();
    for s in &a.shares_by_scene {
        by_scene
            .entry((s.share_scene, s.scene.as_str()))
            .or_default()
            .push((s.date, s.share_user));
    }
    for ((_, scene), points) in &by_scene {
        series.push(Series {
            label: (*scene).to_string(),
            values: per_day(a, points.iter().copied()),
        });
    }
    line_chart(
        out,
        a,
        "shares",
        &series,
        "sharers (人)",
        &format!(
            "People who shared, per day and scene (getusershare), and account-wide (getbizsummary). {GAP_NOTE}"
        ),
    )?;
    if !by_scene.is_empty() {
        out.push_str(
            "<div class=\"table\"><table id=\"shares-by-scene\">\n<thead><tr><th>场景 scene</th><th class=\"n\">分享人数 sharers</th>\
             <th class=\"n\">分享次数 shares</th><th class=\"n\">days</th></tr></thead>\n<tbody>\n",
        );
        for (code, scene) in by_scene.keys() {
            let rows = a.shares_by_scene.iter().filter(|s| s.share_scene == *code);
            let (mut users, mut count, mut days) = (0i64, 0i64, 0usize);
            for s in rows {
                users += s.share_user.unwrap_or(0);
                count += s.share_count.unwrap_or(0);
                days += 1;
            }
            writeln!(
                out,
                "<tr><td>{} ({code})</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{days}</td></tr>",
                esc(scene),
                group(users),
                group(count)
            )?;
        }
        out.push_str("</tbody></table></div>\n");
    }
    Ok(())
}

fn hours(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str("<h3>阅读时段 <span class=\"en\">Readers by hour of day</span></h3>\n");
    if a.reads_by_hour.is_empty() {
        out.push_str(
            "<p class=\"note\">No hourly data for this period (only the legacy getuserreadhour has it).</p>\n",
        );
        return Ok(());
    }
    let mut values = [None; 24];
    for h in &a.reads_by_hour {
        if let Some(slot) = usize::try_from(h.hour).ok().and_then(|i| values.get_mut(i)) {
            *slot = Some(h.read_user as f64);
        }
    }
    let days = a.reads_by_hour.iter().map(|h| h.days).max().unwrap_or(0);
    let wide = charts::hour_chart(&values, "readers (人)", Size::Wide)?;
    let narrow = charts::hour_chart(&values, "readers (人)", Size::Narrow)?;
    chart(
        out,
        &format!("hours-{}", a.appid),
        &format!(
            "Readers per hour over all channels, summed over {} with hourly data (getuserreadhour). Hours without a bar have no data.",
            plural(days as usize, "day")
        ),
        &wide,
        &narrow,
    )
}

fn health(out: &mut String, a: &AccountReport) -> anyhow::Result<()> {
    out.push_str("<h3>数据健康 <span class=\"en\">Data health</span></h3>\n");
    out.push_str(
        "<div class=\"table\"><table id=\"health\">\n<thead><tr><th>endpoint</th><th class=\"n\">缺失 missing days</th>\
         <th>which</th><th>state</th></tr></thead>\n<tbody>\n",
    );
    for e in &a.health.endpoints {
        let mut state = Vec::new();
        if e.offline {
            state.push("<span class=\"bad\">OFFLINE (47009)</span>".to_string());
        }
        if let Some(at) = &e.daily_quota_hit_at {
            state.push(format!("daily quota (45009) last hit {}", esc(at)));
        }
        if state.is_empty() {
            state.push("ok".into());
        }
        let which = if e.missing.is_empty() {
            "–".to_string()
        } else {
            esc(&e.missing.join(", "))
        };
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{} / {}</td><td>{which}</td><td>{}</td></tr>",
            e.endpoint,
            e.days_missing,
            e.days_expected,
            state.join("; ")
        )?;
    }
    out.push_str("</tbody></table></div>\n");
    if a.health.quota_last_seen.is_empty() {
        out.push_str(
            "<p class=\"sub\">Quota last seen (openapi/quota/get): not looked up yet.</p>\n",
        );
    } else {
        out.push_str(
            "<div class=\"table\"><table id=\"quota\"><thead><tr><th>endpoint</th><th>quota seen at</th>\
             <th>daily limit</th><th>used</th><th>remain</th><th>reserve</th><th>sent</th></tr></thead><tbody>\n",
        );
        for q in &a.health.quota_last_seen {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&q.endpoint),
                esc(&q.seen_at),
                q.daily_limit,
                q.used,
                q.remain,
                q.reserve,
                q.sent
            )?;
        }
        out.push_str("</tbody></table></div>\n");
    }
    if a.health.recent_failures.is_empty() {
        out.push_str("<p>No failed fetches in the ledger. 无失败记录</p>\n");
    } else {
        out.push_str(
            "<div class=\"table\"><table id=\"failures\">\n<thead><tr><th>when (UTC)</th><th>endpoint</th><th>dates</th>\
             <th class=\"n\">errcode</th><th>error</th></tr></thead>\n<tbody>\n",
        );
        for f in &a.health.recent_failures {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}..{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&f.fetched_at),
                esc(&f.endpoint),
                f.begin_date,
                f.end_date,
                opt(f.errcode),
                esc(f.error.as_deref().unwrap_or(""))
            )?;
        }
        out.push_str("</tbody></table></div>\n<p class=\"sub\">The latest failed fetches (the fetches ledger); a later sync retries them.</p>\n");
    }
    Ok(())
}

fn no_data(out: &mut String, endpoints: &str) -> anyhow::Result<()> {
    writeln!(
        out,
        "<p class=\"note\">No data for this period ({}).</p>",
        esc(endpoints)
    )?;
    Ok(())
}

fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn opt(v: Option<i64>) -> String {
    v.map_or("–".to_string(), group)
}

fn group(n: i64) -> String {
    charts::group(n)
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{}", group(n))
    } else {
        group(n)
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(signed(-5), "-5");
        assert!(is_web_url("https://mp.weixin.qq.com/s?x"));
        assert!(!is_web_url("javascript:alert(1)"));
    }
}
