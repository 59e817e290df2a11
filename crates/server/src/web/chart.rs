//! A video's metric history as an SVG line chart, drawn on the server by `plotters` (its
//! SVG backend escapes every text it writes, the caption included), so the page needs no
//! JavaScript to show it.

use plotters::prelude::*;

use prismq_domain::ports::MetricSnapshot;
use prismq_domain::Timestamp;

use super::page::{count, line};

/// The chart's size in pixels (it scales with the page).
pub const SIZE: (u32, u32) = (960, 420);
/// The longest caption drawn.
pub const CAPTION_MAX: usize = 80;

/// One drawn series: the captured instants (seconds) and values.
type Series = Vec<(i64, i64)>;

fn series(history: &[MetricSnapshot], pick: fn(&MetricSnapshot) -> Option<i64>) -> Series {
    history
        .iter()
        .filter_map(|s| pick(s).map(|v| (s.captured_at.as_second(), v)))
        .collect()
}

fn date(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The SVG of `history`'s views (and likes, when known) under `caption`.
///
/// # Errors
/// What plotters reports when drawing fails.
pub fn views_svg(caption: &str, history: &[MetricSnapshot]) -> Result<String, String> {
    let views = series(history, |s| s.metrics.views);
    let likes = series(history, |s| s.metrics.likes);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let first = views.first().map_or(0, |p| p.0);
        let last = views.last().map_or(1, |p| p.0).max(first + 1);
        let top = views
            .iter()
            .chain(&likes)
            .map(|p| p.1)
            .max()
            .unwrap_or(0)
            .max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(line(caption, CAPTION_MAX), ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(first..last, 0i64..top + top / 10 + 1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(4)
            .y_labels(6)
            .x_label_formatter(&|s| date(*s))
            .y_label_formatter(&|v| count(*v))
            .x_desc("captured (UTC)")
            .draw()
            .map_err(|e| e.to_string())?;
        if views.is_empty() {
            root.draw(&Text::new(
                "no views recorded yet",
                (SIZE.0 as i32 / 2 - 90, SIZE.1 as i32 / 2),
                ("sans-serif", 18),
            ))
            .map_err(|e| e.to_string())?;
        }
        let blue = RGBColor(36, 84, 197);
        chart
            .draw_series(LineSeries::new(views.iter().copied(), blue.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label("views")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue));
        chart
            .draw_series(views.iter().map(|p| Circle::new(*p, 4, blue.filled())))
            .map_err(|e| e.to_string())?;
        if !likes.is_empty() {
            let orange = RGBColor(196, 98, 16);
            chart
                .draw_series(LineSeries::new(
                    likes.iter().copied(),
                    orange.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("likes")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::content::Metrics;

    fn snap(secs: i64, views: i64) -> MetricSnapshot {
        MetricSnapshot {
            captured_at: Timestamp::from_second(1_764_000_000 + secs).unwrap(),
            metrics: Metrics {
                views: Some(views),
                likes: Some(views / 10),
                comments: None,
            },
        }
    }

    #[test]
    fn a_history_draws_a_line_with_dated_axes() {
        let svg = views_svg(
            "A video",
            &[snap(0, 100), snap(3_600, 1_500), snap(7_200, 4_000)],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polyline"), "a line is drawn");
        assert!(svg.contains("A video") && svg.contains("views") && svg.contains("likes"));
        assert!(svg.contains("2025-11-24"), "dates on the x axis");
    }

    #[test]
    fn a_hostile_caption_is_text_in_the_svg() {
        let svg = views_svg("</text><script>alert(1)</script>\"'&", &[snap(0, 1)]).unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;/text&gt;&lt;script&gt;"));
        let empty = views_svg("none", &[]).unwrap();
        assert!(empty.contains("no views recorded yet"));
    }
}
