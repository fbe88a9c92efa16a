//! Latency distributions as SVG: one empirical CDF per series.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

/// Draws the CDFs of `series` (name, samples in ms) on a log-scaled x axis.
pub fn cdf(path: &Path, title: &str, series: &[(String, Vec<f64>)]) -> anyhow::Result<()> {
    let all: Vec<f64> = series.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.01) * 0.8;
    let hi = all.iter().copied().fold(0.0, f64::max) * 1.25;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds (log scale)")
        .y_desc("fraction of runs")
        .draw()?;
    let palette = [&BLUE, &RED, &GREEN, &MAGENTA, &CYAN, &BLACK];
    for (i, (name, samples)) in series.iter().enumerate() {
        if samples.is_empty() {
            continue;
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let points: Vec<(f64, f64)> = sorted
            .iter()
            .enumerate()
            .flat_map(|(k, &x)| [(x.max(lo), k as f64 / n), (x.max(lo), (k + 1) as f64 / n)])
            .collect();
        let colour = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Every plot of the report, as SVG files in `out`.
pub fn write_plots(out: &Path, report: &Report) -> anyhow::Result<()> {
    let mut handover = Vec::new();
    let mut crash = Vec::new();
    for api in &report.apis {
        if let Some(s) = &api.sigterm_handover_ms {
            handover.push((format!("electd {} SIGTERM", api.api), s.samples.clone()));
        }
        if let Some(s) = &api.resign_handover_ms {
            handover.push((format!("electd {} /v1/resign", api.api), s.samples.clone()));
        }
        for c in &api.crash {
            if let Some(s) = &c.delete_to_acquired_ms {
                crash.push((
                    format!("electd {} TTL {} s", api.api, c.ttl_s),
                    s.samples.clone(),
                ));
            }
        }
    }
    if let Some(e) = &report.etcdctl {
        for (name, s) in [
            (
                "electd v3 SIGTERM, settled: → ~leader in etcd",
                &e.settled.electd.leads_in_etcd_ms,
            ),
            (
                "etcdctl elect SIGINT, settled: → key deleted in etcd",
                &e.settled.etcdctl.leads_in_etcd_ms,
            ),
            ("floor: put → another client's watch", &e.settled.floor_ms),
        ] {
            if let Some(s) = s {
                handover.push((name.to_owned(), s.samples.clone()));
            }
        }
        if let Some(s) = &e.delete_to_elected_ms {
            crash.push(("etcdctl elect TTL 60 s".to_owned(), s.samples.clone()));
        }
    }
    cdf(
        &out.join("handover.svg"),
        "Graceful hand-over: signal → next leader",
        &handover,
    )?;
    let mut steered = Vec::new();
    for api in &report.apis {
        for row in &api.steered {
            if let Some(s) = &row.ended_to_acquired_ms {
                steered.push((
                    format!("electd {} {}, {}", api.api, row.kind, row.candidates),
                    s.samples.clone(),
                ));
            }
        }
    }
    cdf(
        &out.join("steered.svg"),
        "Steered hand-over: old leader's end → next leader",
        &steered,
    )?;
    let mut alive = Vec::new();
    for api in &report.apis {
        for h in &api.host_alive {
            if let Some(s) = &h.kill_to_acquired_ms {
                let exec = if h.exec { ", --exec" } else { "" };
                alive.push((
                    format!("electd {} TTL {} s{exec}", api.api, h.ttl_s),
                    s.samples.clone(),
                ));
            }
        }
    }
    cdf(
        &out.join("crash-host-alive.svg"),
        "Crash failover, host alive: kill -9 of electd → next leader",
        &alive,
    )?;
    cdf(
        &out.join("crash-reaction.svg"),
        "Crash failover: etcd deletes the dead leader's key → next leader",
        &crash,
    )?;
    Ok(())
}
