//! The world map's data: the published, geolocated indicators counted on a 1-degree grid.
//!
//! A grid cell is named by the floor of its latitude and longitude; its point sits at the
//! cell's centre. At most [`MAX_POINTS`] cells are sent, the busiest first, so the page stays
//! light whatever the snapshot's size; `truncated` says when cells were left out.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::store::tables::flags;
use crate::store::{Store, StoreError};

/// Most grid points sent to the page.
pub const MAX_POINTS: usize = 3_000;

/// The grid as the page reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapData {
    pub cell_degrees: u8,
    /// `[longitude, latitude, count]` of each cell's centre, busiest first.
    pub points: Vec<(f64, f64, u64)>,
    /// Geolocated indicators counted (including those in left-out cells).
    pub located: u64,
    pub truncated: bool,
}

/// Counts the active, geolocated records of the snapshot per cell. Blocking: reads every
/// record.
///
/// # Errors
/// Storage failures.
pub fn build(store: &Store) -> Result<MapData, StoreError> {
    let mut cells: HashMap<(i16, i16), u64> = HashMap::new();
    store.for_each_record(|prefix, record| {
        let wanted = prefix.flags & (flags::ACTIVE | flags::GEO) == flags::ACTIVE | flags::GEO;
        if let (true, Some(place)) = (wanted, &record.facts.location) {
            *cells
                .entry(cell(place.latitude, place.longitude))
                .or_default() += 1;
        }
        ControlFlow::Continue(())
    })?;
    Ok(from_cells(cells))
}

/// The cell of a position; out-of-range values are clamped onto the map's edge.
fn cell(latitude: f64, longitude: f64) -> (i16, i16) {
    let lat = latitude.clamp(-90.0, 89.999).floor() as i16;
    let lon = longitude.clamp(-180.0, 179.999).floor() as i16;
    (lat, lon)
}

fn from_cells(cells: HashMap<(i16, i16), u64>) -> MapData {
    let located = cells.values().sum();
    let mut points: Vec<(f64, f64, u64)> = cells
        .into_iter()
        .map(|((lat, lon), n)| (f64::from(lon) + 0.5, f64::from(lat) + 0.5, n))
        .collect();
    points.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(a.0.total_cmp(&b.0))
            .then(a.1.total_cmp(&b.1))
    });
    let truncated = points.len() > MAX_POINTS;
    points.truncate(MAX_POINTS);
    MapData {
        cell_degrees: 1,
        points,
        located,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fall_in_their_one_degree_cell() {
        assert_eq!(cell(48.85, 2.35), (48, 2));
        assert_eq!(cell(-33.9, -70.6), (-34, -71));
        assert_eq!(cell(90.0, 180.0), (89, 179));
    }

    #[test]
    fn busiest_cells_come_first_and_the_list_is_bounded() {
        let mut cells = HashMap::new();
        for i in 0..(MAX_POINTS as i16 + 10) {
            cells.insert((i % 170 - 85, i / 170), 1);
        }
        cells.insert((10, 20), 7);
        let map = from_cells(cells);
        assert_eq!(map.points.len(), MAX_POINTS);
        assert!(map.truncated);
        assert_eq!(map.points[0], (20.5, 10.5, 7));
        assert_eq!(map.located, MAX_POINTS as u64 + 10 + 7);
    }
}
