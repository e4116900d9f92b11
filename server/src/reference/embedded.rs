//! The repository's `fixtures/` reference and demo files, compiled into the binary so that
//! `fieldcheck serve --demo` works from any directory. `demo.fixtures_dir` still overrides them.
//!
//! A test below fails when a file is added to one of these folders and not to [`FILES`], or when the
//! copies differ.

macro_rules! fixtures {
    ($($rel:literal),* $(,)?) => {
        /// `(path relative to fixtures/, text)` of every embedded file.
        pub const FILES: &[(&str, &str)] = &[
            $(($rel, include_str!(concat!("../../../fixtures/", $rel)))),*
        ];
    };
}

fixtures!(
    "certificates/types.json",
    "checklists/bamboo_wood_products.json",
    "checklists/cut_flowers.json",
    "checklists/fresh_fruit.json",
    "checklists/fresh_vegetables.json",
    "checklists/frozen_aquatic.json",
    "checklists/furniture.json",
    "checklists/general_goods.json",
    "checklists/grain_cereals.json",
    "checklists/live_plants.json",
    "checklists/logs_timber.json",
    "checklists/wood_packaging.json",
    "demo/demo.json",
    "hs/hs-codes.json",
    "hs/producer-rules.json",
    "hs/registered-producers.json",
    "hs/risk-rules.json",
    "hs/sampling-ratios.json",
    "sites/calendars.json",
);

/// The embedded file at `rel` (e.g. `hs/hs-codes.json`).
pub fn file(rel: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == rel).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn every_fixture_file_is_embedded_and_the_same() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let mut on_disk = Vec::new();
        for folder in ["certificates", "checklists", "demo", "hs", "sites"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".json") {
                    on_disk.push(format!("{folder}/{name}"));
                }
            }
        }
        on_disk.sort();
        let embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(on_disk, embedded);
        for (rel, text) in super::FILES {
            assert_eq!(std::fs::read_to_string(root.join(rel)).unwrap(), *text, "{rel} differs");
        }
    }
}
