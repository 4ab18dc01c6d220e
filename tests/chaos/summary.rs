//! The table printed at the end of a chaos run.

use crate::load::Ledger;
use crate::stack::Fault;
use crate::verify::Findings;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Each injected fault with the time the system took to come back from it.
pub type Recoveries = Vec<(Fault, Duration)>;

pub fn render(seed: u64, elapsed: Duration, ledger: &Ledger, recoveries: &Recoveries, found: &Findings) -> String {
    let mut by_kind: BTreeMap<Fault, Vec<Duration>> = BTreeMap::new();
    for (fault, took) in recoveries {
        by_kind.entry(*fault).or_default().push(*took);
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "chaos run: seed {seed}, {} faults in {:.0} s", recoveries.len(), elapsed.as_secs_f64());
    let _ = writeln!(w, "  commands accepted (202)           : {}", ledger.accepted);
    let _ = writeln!(w, "  commands refused by a rule (4xx)  : {}", ledger.refused);
    let _ = writeln!(w, "  commands never answered           : {}", ledger.unanswered);
    let _ = writeln!(w, "  attempts sent again (same key)    : {}", ledger.retried);
    let _ = writeln!(w, "  aggregates written                : {}", ledger.versions.len());
    let _ = writeln!(w);
    let _ = writeln!(w, "  {:<36} {:>6} {:>14} {:>14}", "fault", "count", "recovery p50", "recovery max");
    for (fault, mut took) in by_kind {
        took.sort();
        let (p50, max) = (took[(took.len() - 1) / 2], took[took.len() - 1]);
        let _ = writeln!(
            w,
            "  {:<36} {:>6} {:>12.1} s {:>12.1} s",
            fault.name(),
            took.len(),
            p50.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "  records lost                      : {}", found.lost());
    let _ = writeln!(w, "    accepted but not in the source  : {}", found.accepted_lost.len());
    let _ = writeln!(w, "    in the source, not on the topic : {}", found.not_on_topic.len());
    for (model, behind) in &found.behind {
        let _ = writeln!(w, "    behind the source in {model:<10} : {}", behind.len());
    }
    let _ = writeln!(w, "  duplicate effects                 : {}", found.duplicate_effects());
    let _ = writeln!(w, "    a command that ran twice        : {}", found.applied_twice.len());
    for (model, miscounted) in &found.miscounted {
        let _ = writeln!(w, "    author counts off in {model:<10} : {}", miscounted.len());
    }
    let _ = writeln!(w, "  versions the source never had     : {}", found.foreign_versions());
    let _ = writeln!(w, "  dead letters                      : {}", found.dead_letters);
    let _ = writeln!(w, "  records delivered twice (absorbed): {}", found.redelivered);
    out
}
