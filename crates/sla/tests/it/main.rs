//! One test binary for the crate (style.md 9): business time, DST, validation, clocks and
//! property checks over many generated cases.

mod business_time;
mod calendar;
mod clock;
mod dst;
mod properties;
mod support;
