//! external (being written).
