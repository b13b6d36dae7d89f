//! anonymous (being written).
