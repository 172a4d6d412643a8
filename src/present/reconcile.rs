//! Reconciliation as the township offices receive it: the person-level differences in the one
//! CSV format (`hancha reconcile reports --csv` and the console's download write the same bytes
//! for the same rows), and sizes in bytes as people read them.

use super::display;
use crate::proto::operator as pb;

/// Writes the person-level differences as CSV (UTF-8, header row): when found, peer, township,
/// ID number, flow, difference, action taken, inquiry opened, run.
pub fn write_differences_csv<W: std::io::Write>(
    out: W,
    differences: &[pb::PersonDifference],
) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "found_at",
        "peer_county",
        "township",
        "resident_id",
        "flow",
        "difference",
        "action",
        "inquiry_id",
        "run_id",
    ])?;
    for row in differences {
        writer.write_record([
            display::rfc3339(row.found_at.as_ref()).as_str(),
            &row.peer_county,
            &row.township,
            &row.resident_id,
            &row.flow,
            &row.difference,
            &row.action,
            &row.inquiry_id,
            &row.run_id,
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// `count` bytes as people read them: `512 B`, `3.5 kB`, `1.2 MB`.
pub fn bytes(count: u64) -> String {
    match count {
        0..1_024 => format!("{count} B"),
        1_024..1_048_576 => format!("{:.1} kB", count as f64 / 1024.0),
        _ => format!("{:.1} MB", count as f64 / 1_048_576.0),
    }
}
