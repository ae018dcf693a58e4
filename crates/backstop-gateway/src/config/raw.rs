//! The config as written: serde structs that reject unknown keys and wrong types.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::{ProviderKind, Strategy, WhenAllOpenSetting};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: Option<RawServer>,
    #[serde(default)]
    pub(super) providers: Option<BTreeMap<String, RawProvider>>,
    #[serde(default)]
    pub(super) chains: Option<BTreeMap<String, RawChain>>,
    #[serde(default)]
    pub(super) telemetry: Option<RawTelemetry>,
    #[serde(default)]
    pub(super) state: Option<super::state::RawState>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTelemetry {
    pub(super) otlp_endpoint: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawServer {
    pub(super) listen: Option<String>,
    pub(super) client_keys_env: Option<String>,
    pub(super) admin_key_env: Option<String>,
    pub(super) max_body_bytes: Option<Int>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) header_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) body_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) shutdown_grace: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) client_write_timeout: Option<Duration>,
    pub(super) max_connections: Option<Int>,
    pub(super) max_in_flight: Option<Int>,
    pub(super) max_stream_buffer_bytes: Option<Int>,
    pub(super) workers: Option<Int>,
    pub(super) allowed_origins: Option<Vec<String>>,
    pub(super) allowed_hosts: Option<Vec<String>>,
    pub(super) key_limits: Option<super::state::RawKeyLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawProvider {
    pub(super) kind: Option<ProviderKind>,
    pub(super) model: Option<String>,
    pub(super) api_key_env: Option<String>,
    pub(super) base_url: Option<String>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) timeout: Option<Duration>,
    pub(super) retries: Option<Int>,
    pub(super) breaker: Option<RawBreaker>,
    pub(super) hold: Option<RawHold>,
    pub(super) temperature: Option<Float>,
    pub(super) max_tokens: Option<Int>,
    pub(super) top_p: Option<Float>,
    pub(super) stop: Option<Vec<String>>,
    pub(super) dimensions: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawBreaker {
    pub(super) failure_threshold: Option<Int>,
    pub(super) failure_rate: Option<Float>,
    pub(super) minimum_calls: Option<Int>,
    pub(super) outage_failures: Option<Int>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) outage_time: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) window: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) recovery_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) max_recovery_timeout: Option<Duration>,
    pub(super) half_open_probes: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawHold {
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) max: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) initial: Option<Duration>,
}

/// `retry_budget = false` or `retry_budget = { ratio = 0.2, ... }`.
pub(super) enum RawBudget {
    Off,
    On(RawBudgetTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawBudgetTable {
    pub(super) ratio: Option<Float>,
    pub(super) min_per_second: Option<Int>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) ttl: Option<Duration>,
}

impl<'de> Deserialize<'de> for RawBudget {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BudgetVisitor;

        impl<'de> Visitor<'de> for BudgetVisitor {
            type Value = RawBudget;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("false (no budget) or a table { ratio = 0.2, min_per_second = 10, ttl = \"10s\" }")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawBudget, E> {
                if v {
                    Err(E::custom(
                        "`retry_budget = true` is the default; write a table to change it or false to turn it off",
                    ))
                } else {
                    Ok(RawBudget::Off)
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawBudget, A::Error> {
                RawBudgetTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawBudget::On)
            }
        }

        deserializer.deserialize_any(BudgetVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawChain {
    pub(super) strategy: Option<Strategy>,
    pub(super) providers: Option<Vec<RawMember>>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) ttft_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) idle_timeout: Option<Duration>,
    pub(super) fall_through_on: Option<Vec<String>>,
    pub(super) when_all_open: Option<WhenAllOpenSetting>,
    pub(super) retry_budget: Option<RawBudget>,
    pub(super) stream_resume: Option<bool>,
    pub(super) max_resumes: Option<Int>,
    pub(super) hedge_after: Option<RawHedgeAfter>,
    pub(super) hedge_budget: Option<Float>,
}

/// `hedge_after = "2s"` or `hedge_after = { percentile = 95, min = "200ms" }`.
pub(super) enum RawHedgeAfter {
    Fixed(Duration),
    Percentile(RawHedgePercentile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawHedgePercentile {
    pub(super) percentile: Float,
    #[serde(default, with = "crate::duration::serde_str::option")]
    pub(super) min: Option<Duration>,
}

impl<'de> Deserialize<'de> for RawHedgeAfter {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HedgeVisitor;

        impl<'de> Visitor<'de> for HedgeVisitor {
            type Value = RawHedgeAfter;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"2s\" or a table { percentile = 95, min = \"200ms\" }",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHedgeAfter, E> {
                crate::duration::parse_duration(v)
                    .map(RawHedgeAfter::Fixed)
                    .map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHedgeAfter, A::Error> {
                RawHedgePercentile::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawHedgeAfter::Percentile)
            }
        }

        deserializer.deserialize_any(HedgeVisitor)
    }
}

/// A chain member: `"name"` or `{ name = "...", weight = 0.5 }`.
pub(super) struct RawMember {
    pub(super) name: String,
    pub(super) weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawMemberTable {
    pub(super) name: String,
    pub(super) weight: Option<Float>,
}

impl<'de> Deserialize<'de> for RawMember {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = RawMember;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a provider name or a table { name = \"...\", weight = 0.5 }")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMember, E> {
                Ok(RawMember {
                    name: v.to_owned(),
                    weight: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMember, A::Error> {
                // Delegate to the derived impl so toml keeps key spans for its errors.
                let table =
                    RawMemberTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawMember {
                    name: table.name,
                    weight: table.weight.map(|w| w.0),
                })
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// An integer with a friendlier type error than `i64`'s, range-checked later.
#[derive(Clone, Copy)]
pub(super) struct Int(pub(super) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}

/// A number (integer or float), range-checked later.
#[derive(Clone, Copy)]
pub(super) struct Float(pub(super) f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FloatVisitor;

        impl Visitor<'_> for FloatVisitor {
            type Value = Float;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }

            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }

            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
        }

        deserializer.deserialize_f64(FloatVisitor)
    }
}
