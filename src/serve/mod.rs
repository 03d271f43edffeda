//! What a trader watches: alerts where traders already look (and, later, the dashboard).

pub mod alerts;
