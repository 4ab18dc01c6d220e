//! SVG plots of the bench's figures (plotters): throughput over time and
//! latency distributions, written beside `bench/results.json`.

use super::debezium::Outcome;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::time::Duration;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One line: its legend and its points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// The relay beside Debezium: the backlog acknowledged over time, left, and
/// the commit -> consumable latency distribution, right.
pub fn contenders(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let progress: Vec<Series> = outcomes
        .iter()
        .map(|o| Series { name: o.name.into(), points: o.progress.iter().map(|&(t, n)| (t, n as f64)).collect() })
        .collect();
    let latencies: Vec<(String, Vec<Duration>)> =
        outcomes.iter().map(|o| (o.name.to_string(), o.latency.clone())).collect();
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(600);
    lines(&left, "Backlog relayed: records acknowledged", "seconds since released", "records", &progress)?;
    cdf(&right, "Commit -> consumable latency at a steady rate", &latencies)?;
    root.present().map_err(plot_error)
}

/// Latency distributions (one per series) in one chart of its own file.
pub fn latency_file(path: &Path, title: &str, latencies: &[(String, Vec<Duration>)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    cdf(&root, title, latencies)?;
    root.present().map_err(plot_error)
}

/// Cumulative distributions, x in milliseconds up to the largest p99 (the
/// tail beyond is in the table), y the share of samples at or below.
fn cdf(area: &Area, title: &str, latencies: &[(String, Vec<Duration>)]) -> anyhow::Result<()> {
    let series: Vec<Series> = latencies
        .iter()
        .map(|(name, samples)| {
            let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
            ms.sort_by(f64::total_cmp);
            let n = ms.len().max(1) as f64;
            Series {
                name: name.clone(),
                points: ms.iter().enumerate().map(|(i, &v)| (v, (i + 1) as f64 / n)).collect(),
            }
        })
        .collect();
    let p99 = series
        .iter()
        .filter_map(|s| s.points.get(((s.points.len() as f64) * 0.99) as usize).or(s.points.last()))
        .map(|p| p.0)
        .fold(1.0, f64::max);
    let clipped: Vec<Series> = series
        .into_iter()
        .map(|s| Series { name: s.name, points: s.points.into_iter().filter(|p| p.0 <= p99 * 1.05).collect() })
        .collect();
    lines(area, title, "milliseconds", "share of records at or below", &clipped)
}

fn lines(area: &Area, title: &str, x: &str, y: &str, series: &[Series]) -> anyhow::Result<()> {
    let max = |f: fn(&(f64, f64)) -> f64| {
        series.iter().flat_map(|s| s.points.iter()).map(f).fold(0.0, f64::max).max(f64::MIN_POSITIVE) * 1.02
    };
    let (x_max, y_max) = (max(|p| p.0), max(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_error)?;
    let whole = |v: &f64| format!("{v:.0}");
    let tenths = |v: &f64| format!("{v:.1}");
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .x_label_formatter(if x_max > 10.0 { &whole } else { &tenths })
        .y_label_formatter(if y_max > 10.0 { &whole } else { &tenths })
        .draw()
        .map_err(plot_error)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_plot_names_every_series() {
        let dir = std::env::temp_dir().join(format!("sluice-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latency.svg");
        let samples = |base: u64| (0..100).map(|i| Duration::from_millis(base + i)).collect::<Vec<_>>();
        latency_file(&path, "title", &[("fast".into(), samples(1)), ("slow".into(), samples(50))]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in ["title", "fast", "slow", "milliseconds"] {
            assert!(svg.contains(text), "no {text} in the plot");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
