//! The five indicators (登记率, 办证率, 持验证率, 流出人口函查率, 查环查孕结果通报率) per
//! township and for the county, for a year, quarter or month; what each counts is documented in
//! [`crate::store::report`].

use std::collections::BTreeMap;

use tonic::Status;

use super::access::Caller;
use super::{internal, invalid};
use crate::domain::division::{TownshipCode, townships_of};
use crate::domain::resident_id::today_in_china;
use crate::node::Node;
use crate::proto::operator as pb;

pub use crate::domain::report::{Indicator, Indicators, ReportPeriod};

/// Every township of the county (those with nobody counted too, so that a township whose data
/// is missing shows up as `— (0/0)` rather than not at all), then the county total with an
/// empty township. With `township`, that township's row only; a township office always gets
/// its own township's row only (asking for another is refused).
pub(super) async fn report(
    node: &Node,
    caller: &Caller,
    request: pb::ReportRequest,
) -> Result<pb::ReportResponse, Status> {
    let period = match request.period.as_str() {
        "" => ReportPeriod::current_quarter(today_in_china()),
        text => ReportPeriod::parse(text).map_err(|reason| invalid("period", reason))?,
    };
    let requested = match request.township.as_str() {
        "" => None,
        text => Some(
            TownshipCode::parse_within(text, node.county())
                .map_err(|error| invalid("township", error.to_string()))?,
        ),
    };
    let only_township = caller.narrowed(node, requested).await?;
    let counts = node.store().indicator_counts(&period).await.map_err(internal)?;

    let mut townships: BTreeMap<String, Indicators> = townships_of(node.county().current())
        .into_iter()
        .map(|township| (township.as_str().to_string(), Indicators::default()))
        .collect();
    townships.extend(counts.townships);
    let mut rows: Vec<pb::ReportRow> = townships
        .into_iter()
        .filter(|(code, _)| only_township.is_none_or(|only| only.as_str() == code))
        .map(|(code, indicators)| {
            let name = TownshipCode::parse(&code).map(|t| t.name()).unwrap_or_default();
            row(code, name.to_string(), &indicators)
        })
        .collect();
    if only_township.is_none() {
        rows.push(row(
            String::new(),
            node.county().name().to_string(),
            &counts.county,
        ));
    }
    Ok(pb::ReportResponse {
        county: node.county().to_string(),
        period: period.label(),
        period_start: period.start().to_string(),
        period_end: period.end().to_string(),
        rows,
    })
}

fn row(township: String, township_name: String, indicators: &Indicators) -> pb::ReportRow {
    let wire = |indicator: Indicator| pb::Indicator {
        numerator: indicator.numerator,
        denominator: indicator.denominator,
    };
    pb::ReportRow {
        township,
        township_name,
        registration: Some(wire(indicators.registration)),
        certificate: Some(wire(indicators.certificate)),
        verification: Some(wire(indicators.verification)),
        outflow_inquiry: Some(wire(indicators.outflow_inquiry)),
        check_report: Some(wire(indicators.check_report)),
    }
}
