//! scram (being written).
