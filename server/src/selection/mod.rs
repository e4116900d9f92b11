//! The risk engine: after approval, release without inspection, a document check, or an on-site inspection.
//!
//! Decision order: an "always inspect" rule (HS prefix or origin) wins; otherwise the highest sampling
//! ratio among the goods lines' (chapter × credit rating) decides by a random draw; consignments not drawn
//! get a document check with the configured share, by a second draw. The draws are SHA-256 of a random seed
//! and the canonical inputs, so the same seed and inputs always give the same outcome: both are stored with
//! the explanation, and anyone can replay the decision.
//!
//! # Layout
//! - this file: the inputs, the pure [`decide`], gathering inputs and storing and replaying a decision.
//! - [`store`]: the `selections` row. [`error`]: [`SelectionError`]. [`http`]: the stored decision.

pub mod error;
pub mod http;
pub mod store;

pub use error::SelectionError;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    applications::Application,
    db::{Conn, Tx},
    domain::{CreditRating, SelectionOutcome, time::rfc3339},
    error::StoreError,
    reference::{self, RiskRule},
};

/// Everything the decision depends on, stored verbatim. Ratios are floats: serde_json's `float_roundtrip`
/// feature (on in the workspace) makes them parse back bit-exact, which replaying the draw depends on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inputs {
    pub application_id: i64,
    pub inspection_no: String,
    pub credit_rating: CreditRating,
    pub goods: Vec<GoodsInput>,
    /// The rules in force at the time of the decision.
    pub rules: Vec<RuleInput>,
    /// (chapter, ratio) for each chapter among the goods, as configured at the time.
    pub ratios: Vec<(String, f64)>,
    pub document_check_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GoodsInput {
    pub hs_code: String,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleInput {
    pub id: String,
    pub kind: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Explanation {
    pub outcome: SelectionOutcome,
    /// The "always inspect" rule that fired, if one did.
    pub rule: Option<String>,
    pub rule_reason: Option<String>,
    /// The ratio that applied and where it came from.
    pub ratio: f64,
    pub ratio_source: String,
    /// The draws, uniform in [0, 1): inspect when `draw_inspect < ratio`.
    pub draw_inspect: f64,
    pub draw_document: f64,
    pub document_check_share: f64,
}

/// A uniform number in [0, 1) from the seed, a purpose label and the inputs.
fn uniform(seed: &[u8], purpose: &str, inputs: &[u8]) -> f64 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(purpose.as_bytes());
    h.update(inputs);
    let bytes: [u8; 8] = h.finalize()[..8].try_into().expect("8 bytes");
    // 53 bits: exactly representable in an f64, uniform over [0, 1).
    (u64::from_be_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The pure decision: the same seed and inputs give the same explanation, always.
pub fn decide(seed: &[u8], inputs: &Inputs) -> Explanation {
    let canonical = serde_json::to_vec(inputs).expect("inputs serialise");
    let draw_inspect = uniform(seed, "inspect", &canonical);
    let draw_document = uniform(seed, "document", &canonical);
    let fired = inputs.rules.iter().find(|r| {
        inputs.goods.iter().any(|g| match r.kind.as_str() {
            "hs_prefix" => g.hs_code.starts_with(&r.value),
            "origin" => g.origin == r.value,
            _ => false,
        })
    });
    let (ratio, ratio_source) = inputs
        .ratios
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(chapter, ratio)| (*ratio, format!("chapter {chapter} × {}", inputs.credit_rating)))
        .unwrap_or((reference::DEFAULT_RATIO, "default".into()));
    let outcome = if fired.is_some() || draw_inspect < ratio {
        SelectionOutcome::OnSite
    } else if draw_document < inputs.document_check_share {
        SelectionOutcome::DocumentCheck
    } else {
        SelectionOutcome::Release
    };
    Explanation {
        outcome,
        rule: fired.map(|r| r.id.clone()),
        rule_reason: fired.map(|r| r.reason.clone()),
        ratio,
        ratio_source,
        draw_inspect,
        draw_document,
        document_check_share: inputs.document_check_share,
    }
}

/// Gathers the inputs for an application from the current reference data.
pub fn gather(c: &Conn, app: &Application) -> Result<Inputs, SelectionError> {
    let enterprise = crate::orgs::store::enterprise(c, app.enterprise_id)
        .map_err(StoreError::from)?
        .ok_or(SelectionError::NoEnterprise)?;
    let goods: Vec<GoodsInput> = app
        .content
        .goods
        .iter()
        .map(|g| GoodsInput {
            hs_code: String::from(g.hs_code.clone()),
            origin: String::from(g.origin_country.clone()),
        })
        .collect();
    let mut chapters: Vec<String> = goods.iter().map(|g| g.hs_code[..2].to_string()).collect();
    chapters.sort();
    chapters.dedup();
    let mut ratios = Vec::new();
    for chapter in chapters {
        let ratio = reference::sampling_ratio(c, &chapter, enterprise.credit_rating)?
            .unwrap_or(reference::DEFAULT_RATIO);
        ratios.push((chapter, ratio));
    }
    let rules = reference::risk_rules(c)?
        .into_iter()
        .map(|RiskRule { id, kind, value, reason_en }| RuleInput { id, kind, value, reason: reason_en })
        .collect();
    Ok(Inputs {
        application_id: app.id,
        // Selection runs on a submitted application, and submitting numbers it: no number is damage.
        inspection_no: app.inspection_no.clone().ok_or_else(|| {
            anyhow::anyhow!("application {} is selected without an inspection number", app.id)
        })?,
        credit_rating: enterprise.credit_rating,
        goods,
        rules,
        ratios,
        document_check_share: reference::document_check_share(c)?,
    })
}

/// Decides for an approved application with a fresh random seed and stores seed, inputs and explanation.
pub fn select(tx: &Tx<'_>, app: &Application, now: i64) -> Result<Explanation, SelectionError> {
    let inputs = gather(tx, app)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let explanation = decide(&seed, &inputs);
    let row = store::SelectionRow {
        outcome: explanation.outcome,
        seed: hex::encode(seed),
        inputs: serde_json::to_string(&inputs).map_err(anyhow::Error::from)?,
        explanation: serde_json::to_string(&explanation).map_err(anyhow::Error::from)?,
        decided_at: now,
    };
    store::upsert(tx, app.id, &row)?;
    Ok(explanation)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoredSelection {
    pub application_id: i64,
    pub outcome: SelectionOutcome,
    /// Hex of the random seed.
    pub seed: String,
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    pub explanation: Explanation,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: i64,
    /// Replaying the stored seed and inputs gives the stored outcome (an audit check).
    pub reproduced: bool,
}

pub fn stored(c: &Conn, application_id: i64) -> Result<Option<StoredSelection>, SelectionError> {
    let Some(store::SelectionRow { outcome, seed, inputs, explanation, decided_at }) =
        store::get(c, application_id)?
    else {
        return Ok(None);
    };
    let parsed_inputs: Inputs = serde_json::from_str(&inputs).map_err(anyhow::Error::from)?;
    let explanation: Explanation = serde_json::from_str(&explanation).map_err(anyhow::Error::from)?;
    let replay = decide(&hex::decode(&seed).map_err(anyhow::Error::from)?, &parsed_inputs);
    Ok(Some(StoredSelection {
        application_id,
        outcome,
        reproduced: replay == explanation,
        seed,
        inputs: json!(parsed_inputs),
        explanation,
        decided_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(ratio: f64, rules: Vec<RuleInput>) -> Inputs {
        Inputs {
            application_id: 1,
            inspection_no: "226022000000001".into(),
            credit_rating: CreditRating::General,
            goods: vec![GoodsInput { hs_code: "0805100000".into(), origin: "CN".into() }],
            rules,
            ratios: vec![("08".into(), ratio)],
            document_check_share: 0.3,
        }
    }

    #[test]
    fn the_same_seed_and_inputs_give_the_same_decision() {
        let i = inputs(0.5, vec![]);
        let seed = [42u8; 32];
        assert_eq!(decide(&seed, &i), decide(&seed, &i));
        let other = decide(&[43u8; 32], &i);
        assert_ne!(decide(&seed, &i).draw_inspect, other.draw_inspect);
    }

    #[test]
    fn a_decision_replays_identically_after_a_trip_through_json() {
        for k in 0..2000u32 {
            let mut i = inputs(0.1 + f64::from(k) / 7919.0, vec![]);
            i.document_check_share = 1.0 / (3.0 + f64::from(k));
            let seed = [(k % 251) as u8; 32];
            let stored_inputs = serde_json::to_string(&i).unwrap();
            let stored = serde_json::to_string(&decide(&seed, &i)).unwrap();
            let replayed = decide(&seed, &serde_json::from_str(&stored_inputs).unwrap());
            assert_eq!(serde_json::from_str::<Explanation>(&stored).unwrap(), replayed, "case {k}");
        }
    }

    #[test]
    fn an_always_inspect_rule_wins_over_any_ratio() {
        let rule = RuleInput {
            id: "fruit-fly".into(),
            kind: "hs_prefix".into(),
            value: "0805".into(),
            reason: "r".into(),
        };
        for s in 0..50u8 {
            let e = decide(&[s; 32], &inputs(0.0, vec![rule.clone()]));
            assert_eq!(e.outcome, SelectionOutcome::OnSite);
            assert_eq!(e.rule.as_deref(), Some("fruit-fly"));
        }
    }

    /// Over 10,000 draws the on-site share stays within 4 standard deviations of the ratio
    /// (σ = √(p(1−p)/n) ≈ 0.004 for p = 0.2): a failure here means a biased draw, not bad luck
    /// (probability < 1e-4 for an unbiased one).
    #[test]
    fn over_ten_thousand_draws_the_observed_ratio_matches_the_parameter() {
        for ratio in [0.05, 0.2, 0.8] {
            let n = 10_000;
            let mut on_site = 0;
            for k in 0..n {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(k as u64).to_be_bytes());
                if decide(&seed, &inputs(ratio, vec![])).outcome == SelectionOutcome::OnSite {
                    on_site += 1;
                }
            }
            let observed = on_site as f64 / n as f64;
            let sigma = (ratio * (1.0 - ratio) / n as f64).sqrt();
            assert!((observed - ratio).abs() < 4.0 * sigma, "ratio {ratio}: observed {observed}");
        }
    }
}
