//! What a trader watches: the dashboard and alerts where traders already look.

pub mod alerts;
pub mod dashboard;
