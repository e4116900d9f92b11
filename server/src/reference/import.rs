//! Importing reference data: `fieldcheck admin import-reference DIR`, and the demo loader.
//!
//! # Layout
//! - [`Source`]: a folder laid out like `fixtures/`, or the copy compiled into the binary ([`embedded`]).
//! - [`ReferenceSet::read`]: reads and checks every file, collecting every problem, touching no database.
//! - [`ReferenceSet::apply`]: checks what needs the database (sites named by calendars, certificate types
//!   still in use), then writes only what differs, in the caller's transaction, and says what changed.
//! - [`ImportReport`]: per table, how many rows were added, changed and removed.
//!
//! Checking everything before writing anything is what makes a bad folder harmless: the tables are either
//! all replaced or all untouched. Comparing before writing is what makes a second import of the same folder
//! a no-op (no writes, no audit entry), so operators can run it from a deployment script on every start.
//!
//! [`embedded`]: super::embedded

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;

pub use super::error::{ImportError, Problems};
pub use super::store::missing;
use super::{CheckItem, store};
use crate::{
    audit::{self, Actor},
    bookings::{self, CalendarSpec, calendar::ClosedDay, error::BookingError},
    certificates::types::CertificateType,
    db::{SqlValue as Sql, Tx, error::StoreError},
    domain::CreditRating,
};

/// No reference file is anywhere near this; a bigger one is a mistake, refused before it is read whole.
const MAX_FILE_BYTES: u64 = 8 << 20;
/// Checklist templates in one folder.
const MAX_TEMPLATES: usize = 500;

/// The files an import reads, relative to its folder. Checklist templates are every `checklists/*.json`.
pub const HS_CODES: &str = "hs/hs-codes.json";
pub const PRODUCER_RULES: &str = "hs/producer-rules.json";
pub const REGISTERED_PRODUCERS: &str = "hs/registered-producers.json";
pub const RISK_RULES: &str = "hs/risk-rules.json";
pub const SAMPLING_RATIOS: &str = "hs/sampling-ratios.json";
pub const CERTIFICATE_TYPES: &str = "certificates/types.json";
pub const SITE_CALENDARS: &str = "sites/calendars.json";
pub const CHECKLISTS_DIR: &str = "checklists";

/// Where reference files come from.
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    /// The copy of `fixtures/` compiled into the binary (demo mode from any directory).
    Embedded,
}

impl Source {
    fn describe(&self, rel: &str) -> String {
        match self {
            Source::Dir(d) => d.join(rel).display().to_string(),
            Source::Embedded => format!("{rel} (built in)"),
        }
    }

    /// The file's text, `None` if it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<String>, String> {
        match self {
            Source::Embedded => Ok(super::embedded::file(rel).map(str::to_owned)),
            Source::Dir(d) => read_bounded(&d.join(rel)),
        }
    }

    /// `(relative path, text)` of every checklist template, sorted by name.
    fn checklists(&self) -> Result<Vec<(String, String)>, String> {
        match self {
            Source::Embedded => Ok(super::embedded::FILES
                .iter()
                .filter(|(p, _)| p.starts_with("checklists/") && p.ends_with(".json"))
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect()),
            Source::Dir(d) => {
                let dir = d.join(CHECKLISTS_DIR);
                let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".json"))
                    .collect();
                if names.len() > MAX_TEMPLATES {
                    return Err(format!("{}: more than {MAX_TEMPLATES} templates", dir.display()));
                }
                names.sort();
                let mut out = Vec::new();
                for n in names {
                    let rel = format!("{CHECKLISTS_DIR}/{n}");
                    if let Some(text) = read_bounded(&d.join(&rel))? {
                        out.push((rel, text));
                    }
                }
                Ok(out)
            }
        }
    }
}

fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{}: larger than {} MiB", path.display(), MAX_FILE_BYTES >> 20));
    }
    Ok(Some(text))
}

// ---- the file formats (docs/operations.md "Reference data") ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HsFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    #[serde(default, rename = "source_note")]
    _source_note: Option<String>,
    codes: Vec<HsRow>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HsRow {
    code: String,
    chapter: String,
    description_en: String,
    description_zh: String,
    /// The legal unit of quantity.
    unit: String,
    category: Option<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProducerRulesFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    rules: Vec<ProducerRuleRow>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProducerRuleRow {
    id: String,
    hs_prefix: String,
    requires: String,
    #[serde(default)]
    direction: Option<String>,
    reason_en: String,
    reason_zh: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProducersFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    producers: Vec<ProducerRow>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProducerRow {
    registration_no: String,
    name: String,
    hs_prefixes: Vec<String>,
    valid_until: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    rules: Vec<RiskRow>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskRow {
    id: String,
    kind: String,
    value: String,
    /// Only `on_site` exists: a matching consignment is always inspected on site.
    #[serde(default)]
    outcome: Option<String>,
    reason_en: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatiosFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    ratios: Vec<RatioRow>,
    document_check_share: Option<f64>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioRow {
    chapter: String,
    credit_rating: String,
    ratio: f64,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    category: String,
    version: i64,
    title_en: String,
    title_zh: String,
    items: Vec<CheckItem>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypesFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    #[serde(default, rename = "source_note")]
    _source_note: Option<String>,
    types: Vec<CertificateType>,
}
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    #[serde(default)]
    calendars: Vec<SiteCalendar>,
    #[serde(default)]
    site_locations: Vec<SiteLocation>,
}
/// A site's slot calendar: the site's code plus what a supervisor would `PUT`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct SiteCalendar {
    site_code: String,
    slot_minutes: i64,
    capacity: i64,
    auto_confirm: bool,
    hours: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    closed_days: Vec<ClosedDay>,
}
/// Where a site is, so the dashboard's map can flag photos taken elsewhere.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct SiteLocation {
    site_code: String,
    latitude: f64,
    longitude: f64,
    /// How far from the site a photo may be taken before the handheld warns (metres); the default
    /// (`fieldcheck_sync::schema::DEFAULT_SITE_RADIUS_M`) when absent.
    #[serde(default)]
    radius_m: Option<f64>,
}

/// One row as the generic diff sees it: the key, then every column.
type Row = Vec<(&'static str, Sql)>;

/// A reference table's wanted content.
struct Table {
    name: &'static str,
    key: &'static [&'static str],
    /// Limits the rows the table owns (settings_kv holds other settings too).
    scope: &'static str,
    rows: Vec<Row>,
}

/// Reference data read and checked, ready to apply.
pub struct ReferenceSet {
    tables: Vec<Table>,
    calendars: Vec<SiteCalendar>,
    locations: Vec<SiteLocation>,
}

/// What an import changed (or, with nothing changed, that it was a no-op).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    pub tables: Vec<TableChange>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableChange {
    pub table: &'static str,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl ImportReport {
    pub fn changed(&self) -> bool {
        self.tables.iter().any(|t| t.added + t.changed + t.removed > 0)
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            return write!(f, "reference data unchanged");
        }
        write!(f, "reference data imported:")?;
        for t in &self.tables {
            write!(
                f,
                "\n  {:<22} {} added, {} changed, {} removed, {} unchanged",
                t.table, t.added, t.changed, t.removed, t.unchanged
            )?;
        }
        Ok(())
    }
}

fn text(s: &str) -> Sql {
    Sql::Text(s.to_owned())
}

fn opt_text(s: &Option<String>) -> Sql {
    s.as_deref().map_or(Sql::Null, text)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Collects problems instead of stopping at the first, so one run shows everything to fix.
#[derive(Default)]
struct Check(Vec<String>);

impl Check {
    fn that(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, source: &Source, rel: &str, required: bool) -> Option<T> {
        match source.read(rel) {
            Ok(Some(text)) => match serde_json::from_str(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.0.push(format!("{}: {e}", source.describe(rel)));
                    None
                }
            },
            Ok(None) if required => {
                self.0.push(format!("{}: missing", source.describe(rel)));
                None
            }
            Ok(None) => None,
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    fn unique<'a>(&mut self, file: &str, what: &str, keys: impl IntoIterator<Item = &'a str>) {
        let mut seen = BTreeSet::new();
        for k in keys {
            if !seen.insert(k) {
                self.0.push(format!("{file}: {what} `{k}` appears twice"));
            }
        }
    }
}

impl ReferenceSet {
    /// Reads and checks every reference file of `source`. All problems come back together.
    pub fn read(source: &Source) -> Result<ReferenceSet, Problems> {
        let mut c = Check::default();
        let hs: Option<HsFile> = c.parse(source, HS_CODES, true);
        let producer_rules: Option<ProducerRulesFile> = c.parse(source, PRODUCER_RULES, true);
        let producers: Option<ProducersFile> = c.parse(source, REGISTERED_PRODUCERS, true);
        let risk: Option<RiskFile> = c.parse(source, RISK_RULES, true);
        let ratios: Option<RatiosFile> = c.parse(source, SAMPLING_RATIOS, true);
        let types: Option<TypesFile> = c.parse(source, CERTIFICATE_TYPES, true);
        let sites: SitesFile = c.parse(source, SITE_CALENDARS, false).unwrap_or_default();
        let mut templates = Vec::new();
        match source.checklists() {
            Ok(files) => {
                for (rel, text) in files {
                    match serde_json::from_str::<TemplateFile>(&text) {
                        Ok(t) => templates.push((rel, t)),
                        Err(e) => c.0.push(format!("{}: {e}", source.describe(&rel))),
                    }
                }
            }
            Err(e) => c.0.push(e),
        }
        let mut tables = Vec::new();

        // Checklist templates first: HS codes name their categories.
        c.that(!templates.is_empty() || !c.0.is_empty(), || {
            format!("{}: no checklist templates (*.json)", source.describe(CHECKLISTS_DIR))
        });
        c.unique(CHECKLISTS_DIR, "category", templates.iter().map(|(_, t)| t.category.as_str()));
        c.unique(
            CHECKLISTS_DIR,
            "item_id",
            templates.iter().flat_map(|(_, t)| t.items.iter().map(|i| i.item_id.as_str())),
        );
        let categories: BTreeSet<&str> = templates.iter().map(|(_, t)| t.category.as_str()).collect();
        c.that(templates.is_empty() || categories.contains("general_goods"), || {
            format!(
                "{CHECKLISTS_DIR}: no `general_goods` template, the fallback for HS codes without a category"
            )
        });
        let mut rows = Vec::new();
        for (rel, t) in &templates {
            c.that(rel.ends_with(&format!("/{}.json", t.category)), || {
                format!("{rel}: category `{}` differs from the file name", t.category)
            });
            c.that(!t.items.is_empty(), || format!("{rel}: no items"));
            for i in &t.items {
                c.that(matches!(i.kind.as_str(), "visual" | "measurement" | "document" | "sampling"), || {
                    format!(
                        "{rel}: item {} has kind `{}`; use visual, measurement, document or sampling",
                        i.item_id, i.kind
                    )
                });
                c.that(i.kind != "measurement" || i.unit.is_some(), || {
                    format!("{rel}: measurement item {} has no unit", i.item_id)
                });
            }
            let items = serde_json::to_string(&t.items).unwrap_or_default();
            rows.push(vec![
                ("category", text(&t.category)),
                ("version", Sql::Integer(t.version)),
                ("title_en", text(&t.title_en)),
                ("title_zh", text(&t.title_zh)),
                ("items", Sql::Text(items)),
            ]);
        }
        tables.push(Table { name: "checklist_templates", key: &["category"], scope: "1", rows });

        if let Some(hs) = &hs {
            c.that(!hs.codes.is_empty(), || format!("{HS_CODES}: no codes"));
            c.unique(HS_CODES, "code", hs.codes.iter().map(|h| h.code.as_str()));
            let mut rows = Vec::new();
            for h in &hs.codes {
                c.that(
                    h.code.len() == 10
                        && digits(&h.code)
                        && h.chapter.len() == 2
                        && h.code.starts_with(&h.chapter),
                    || {
                        format!(
                            "{HS_CODES}: `{}` is not 10 digits starting with its chapter `{}`",
                            h.code, h.chapter
                        )
                    },
                );
                c.that(!h.unit.trim().is_empty(), || format!("{HS_CODES}: {} has no legal unit", h.code));
                if let Some(cat) = &h.category {
                    c.that(templates.is_empty() || categories.contains(cat.as_str()), || {
                        format!(
                            "{HS_CODES}: {} names category `{cat}`, which has no checklist template",
                            h.code
                        )
                    });
                }
                rows.push(vec![
                    ("code", text(&h.code)),
                    ("chapter", text(&h.chapter)),
                    ("description_en", text(&h.description_en)),
                    ("description_zh", text(&h.description_zh)),
                    ("unit", text(h.unit.trim())),
                    ("category", opt_text(&h.category)),
                ]);
            }
            tables.push(Table { name: "hs_codes", key: &["code"], scope: "1", rows });
        }

        if let Some(f) = &producer_rules {
            c.unique(PRODUCER_RULES, "id", f.rules.iter().map(|r| r.id.as_str()));
            let mut rows = Vec::new();
            for r in &f.rules {
                c.that(digits(&r.hs_prefix), || {
                    format!("{PRODUCER_RULES}: {} has a non-digit hs_prefix", r.id)
                });
                c.that(r.requires == "registered_producer", || {
                    format!(
                        "{PRODUCER_RULES}: {} requires `{}`; only registered_producer is known",
                        r.id, r.requires
                    )
                });
                c.that(matches!(r.direction.as_deref(), None | Some("import" | "export")), || {
                    format!("{PRODUCER_RULES}: {} has direction other than import, export or null", r.id)
                });
                rows.push(vec![
                    ("id", text(&r.id)),
                    ("hs_prefix", text(&r.hs_prefix)),
                    ("requires", text(&r.requires)),
                    ("direction", opt_text(&r.direction)),
                    ("reason_en", text(&r.reason_en)),
                    ("reason_zh", text(&r.reason_zh)),
                ]);
            }
            tables.push(Table { name: "producer_rules", key: &["id"], scope: "1", rows });
        }

        if let Some(f) = &producers {
            c.unique(
                REGISTERED_PRODUCERS,
                "registration_no",
                f.producers.iter().map(|p| p.registration_no.as_str()),
            );
            let mut rows = Vec::new();
            for p in &f.producers {
                c.that(!p.hs_prefixes.is_empty() && p.hs_prefixes.iter().all(|x| digits(x)), || {
                    format!("{REGISTERED_PRODUCERS}: {} needs HS prefixes of digits", p.registration_no)
                });
                match crate::domain::time::rfc3339::parse(&p.valid_until) {
                    Ok(until) => rows.push(vec![
                        ("registration_no", text(&p.registration_no)),
                        ("name", text(&p.name)),
                        ("hs_prefixes", Sql::Text(p.hs_prefixes.join(","))),
                        ("valid_until", Sql::Integer(until)),
                    ]),
                    Err(e) => {
                        c.0.push(format!("{REGISTERED_PRODUCERS}: {} valid_until: {e}", p.registration_no))
                    }
                }
            }
            tables.push(Table { name: "registered_producers", key: &["registration_no"], scope: "1", rows });
        }

        if let Some(f) = &risk {
            c.unique(RISK_RULES, "id", f.rules.iter().map(|r| r.id.as_str()));
            let mut rows = Vec::new();
            for r in &f.rules {
                c.that(matches!(r.kind.as_str(), "hs_prefix" | "origin"), || {
                    format!("{RISK_RULES}: {} has kind `{}`; use hs_prefix or origin", r.id, r.kind)
                });
                c.that(r.kind != "hs_prefix" || digits(&r.value), || {
                    format!("{RISK_RULES}: {} needs an HS prefix of digits", r.id)
                });
                c.that(
                    r.kind != "origin"
                        || (r.value.len() == 2 && r.value.bytes().all(|b| b.is_ascii_uppercase())),
                    || format!("{RISK_RULES}: {} needs a two-letter ISO origin code", r.id),
                );
                c.that(matches!(r.outcome.as_deref(), None | Some("on_site")), || {
                    format!("{RISK_RULES}: {} has an outcome other than on_site", r.id)
                });
                rows.push(vec![
                    ("id", text(&r.id)),
                    ("kind", text(&r.kind)),
                    ("value", text(&r.value)),
                    ("reason_en", text(&r.reason_en)),
                ]);
            }
            tables.push(Table { name: "risk_rules", key: &["id"], scope: "1", rows });
        }

        if let Some(f) = &ratios {
            let mut rows = Vec::new();
            let mut seen = BTreeSet::new();
            for r in &f.ratios {
                let rating = CreditRating::parse(&r.credit_rating);
                c.that(rating.is_some(), || {
                    format!(
                        "{SAMPLING_RATIOS}: unknown credit rating `{}` for chapter {}",
                        r.credit_rating, r.chapter
                    )
                });
                c.that(r.chapter.len() == 2 && digits(&r.chapter), || {
                    format!("{SAMPLING_RATIOS}: chapter `{}` is not two digits", r.chapter)
                });
                c.that((0.0..=1.0).contains(&r.ratio), || {
                    format!(
                        "{SAMPLING_RATIOS}: ratio {} for {} {} is not between 0 and 1",
                        r.ratio, r.chapter, r.credit_rating
                    )
                });
                c.that(seen.insert((r.chapter.clone(), r.credit_rating.clone())), || {
                    format!(
                        "{SAMPLING_RATIOS}: chapter {} and rating {} appear twice",
                        r.chapter, r.credit_rating
                    )
                });
                if let Some(rating) = rating {
                    rows.push(vec![
                        ("chapter", text(&r.chapter)),
                        ("credit_rating", text(rating.as_str())),
                        ("ratio", Sql::Real(r.ratio)),
                    ]);
                }
            }
            tables.push(Table {
                name: "sampling_ratios",
                key: &["chapter", "credit_rating"],
                scope: "1",
                rows,
            });
            let mut share = Vec::new();
            if let Some(s) = f.document_check_share {
                c.that((0.0..=1.0).contains(&s), || {
                    format!("{SAMPLING_RATIOS}: document_check_share {s} is not between 0 and 1")
                });
                share.push(vec![("key", text("document_check_share")), ("value", Sql::Text(s.to_string()))]);
            }
            tables.push(Table {
                name: "settings_kv",
                key: &["key"],
                scope: "key = 'document_check_share'",
                rows: share,
            });
        }

        if let Some(f) = &types {
            c.unique(CERTIFICATE_TYPES, "code", f.types.iter().map(|t| t.code.as_str()));
            let mut rows = Vec::new();
            for t in &f.types {
                if let Err(e) = t.check() {
                    c.0.push(format!("{CERTIFICATE_TYPES}: {e}"));
                }
                rows.push(vec![
                    ("code", text(&t.code)),
                    ("body", Sql::Text(serde_json::to_string(t).unwrap_or_default())),
                ]);
            }
            tables.push(Table { name: "certificate_types", key: &["code"], scope: "1", rows });
        }

        c.unique(SITE_CALENDARS, "calendar site_code", sites.calendars.iter().map(|s| s.site_code.as_str()));
        c.unique(
            SITE_CALENDARS,
            "location site_code",
            sites.site_locations.iter().map(|s| s.site_code.as_str()),
        );
        for cal in &sites.calendars {
            if let Err(e) = cal.spec().check() {
                c.0.push(format!("{SITE_CALENDARS}: calendar of {}: {e}", cal.site_code));
            }
        }
        for l in &sites.site_locations {
            c.that((-90.0..=90.0).contains(&l.latitude) && (-180.0..=180.0).contains(&l.longitude), || {
                format!("{SITE_CALENDARS}: location of {} is not a latitude and longitude", l.site_code)
            });
            c.that(l.radius_m.is_none_or(|r| r.is_finite() && r > 0.0), || {
                format!("{SITE_CALENDARS}: radius_m of {} must be a positive number of metres", l.site_code)
            });
        }

        if !c.0.is_empty() {
            return Err(Problems(c.0));
        }
        Ok(ReferenceSet { tables, calendars: sites.calendars, locations: sites.site_locations })
    }

    /// Writes what differs from the database, in `tx`. Problems only the database can show (a calendar for a
    /// site that does not exist, removing a certificate type that applications use) are found before the
    /// first write. One audit entry names the counts when anything changed.
    pub fn apply(&self, tx: &Tx<'_>, now: i64, actor: &Actor) -> Result<ImportReport, ImportError> {
        let mut problems = Vec::new();
        let mut site_ids = BTreeMap::new();
        let codes: BTreeSet<&String> = self
            .calendars
            .iter()
            .map(|c| &c.site_code)
            .chain(self.locations.iter().map(|l| &l.site_code))
            .collect();
        for code in codes {
            match bookings::site_by_code(tx, "site_code", code) {
                Ok(site) => {
                    site_ids.insert(code.clone(), site.id);
                }
                // A code no unit has, or a unit that is no site: the refusal's sentence is the problem.
                Err(e @ (BookingError::UnknownSite { .. } | BookingError::NotASite { .. })) => problems.push(format!(
                    "{SITE_CALENDARS}: {e} (create the site first: `fieldcheck admin create-unit --kind site …`)"
                )),
                Err(e) => return Err(e.into()),
            }
        }

        let mut plans = Vec::new();
        for table in &self.tables {
            let plan = plan(tx, table)?;
            if table.name == "certificate_types" {
                for key in &plan.removed {
                    let code = show_key(key);
                    if store::certificate_type_used(tx, &code)? {
                        problems.push(format!(
                            "{CERTIFICATE_TYPES}: type `{code}` is left out, but certificate applications use it; keep it"
                        ));
                    }
                }
            }
            plans.push((table, plan));
        }
        if !problems.is_empty() {
            return Err(ImportError::Problems(Problems(problems)));
        }

        let mut report = ImportReport::default();
        for (table, plan) in plans {
            write(tx, table, &plan)?;
            report.tables.push(TableChange {
                table: table.name,
                added: plan.added,
                changed: plan.changed,
                removed: plan.removed.len(),
                unchanged: plan.unchanged,
            });
        }

        // Calendars and locations are set per site and never removed: a site left out of the file keeps what
        // it has (its bookings hang on it).
        let mut cal = TableChange { table: "slot_calendars", added: 0, changed: 0, removed: 0, unchanged: 0 };
        for c in &self.calendars {
            let site_id = site_ids[&c.site_code];
            let spec = c.spec();
            match bookings::calendar::get(tx, site_id)? {
                Some(old) if same_calendar(&old, &spec) => cal.unchanged += 1,
                old => {
                    bookings::calendar::put(tx, now, site_id, &spec, &Actor::System)?;
                    if old.is_some() { cal.changed += 1 } else { cal.added += 1 }
                }
            }
        }
        report.tables.push(cal);
        let locations = Table {
            name: "site_locations",
            key: &["unit_id"],
            scope: "1",
            rows: self
                .locations
                .iter()
                .map(|l| {
                    vec![
                        ("unit_id", Sql::Integer(site_ids[&l.site_code])),
                        ("latitude", Sql::Real(l.latitude)),
                        ("longitude", Sql::Real(l.longitude)),
                        ("radius_m", l.radius_m.map_or(Sql::Null, Sql::Real)),
                    ]
                })
                .collect(),
        };
        let mut plan_locations = plan(tx, &locations)?;
        plan_locations.removed.clear();
        write(tx, &locations, &plan_locations)?;
        report.tables.push(TableChange {
            table: "site_locations",
            added: plan_locations.added,
            changed: plan_locations.changed,
            removed: 0,
            unchanged: plan_locations.unchanged,
        });

        if report.changed() {
            let details = serde_json::to_value(&report.tables).unwrap_or_else(|_| json!({}));
            audit::append(tx, now, actor, audit::Action::ReferenceImported, "reference", details)?;
        }
        Ok(report)
    }
}

impl SiteCalendar {
    fn spec(&self) -> CalendarSpec {
        CalendarSpec {
            slot_minutes: self.slot_minutes,
            capacity: self.capacity,
            auto_confirm: self.auto_confirm,
            hours: self.hours.clone(),
            closed_days: self.closed_days.clone(),
        }
    }
}

fn same_calendar(old: &bookings::calendar::Calendar, new: &CalendarSpec) -> bool {
    old.slot_minutes == new.slot_minutes
        && old.capacity == new.capacity
        && old.auto_confirm == new.auto_confirm
        && old.hours == new.hours
        && old.closed_days.len() == new.closed_days.len()
        && old
            .closed_days
            .iter()
            .zip(&new.closed_days)
            .all(|(a, b)| a.date == b.date && a.reason.trim() == b.reason.trim())
}

#[derive(Default)]
struct Plan {
    added: usize,
    changed: usize,
    unchanged: usize,
    /// Keys of rows to delete.
    removed: Vec<Vec<Sql>>,
    /// Indexes into the table's rows to upsert.
    upsert: Vec<usize>,
}

fn key_of(table: &Table, row: &Row) -> Vec<Sql> {
    table
        .key
        .iter()
        .map(|k| row.iter().find(|(c, _)| c == k).map(|(_, v)| v.clone()).unwrap_or(Sql::Null))
        .collect()
}

fn show_key(key: &[Sql]) -> String {
    key.iter()
        .map(|v| match v {
            Sql::Text(s) => s.clone(),
            Sql::Integer(i) => i.to_string(),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A stored row as (key values, column values).
type KeyedRow = (Vec<Sql>, Vec<Sql>);

/// Compares the table's rows in the database with the wanted ones, column by column.
fn plan(tx: &Tx<'_>, table: &Table) -> Result<Plan, StoreError> {
    let Some(first) = table.rows.first() else {
        let existing = current(tx, table, &[])?.into_values().map(|(k, _)| k).collect();
        return Ok(Plan { removed: existing, ..Plan::default() });
    };
    let columns: Vec<&str> = first.iter().map(|(c, _)| *c).collect();
    let mut existing = current(tx, table, &columns)?;
    let mut plan = Plan::default();
    for (i, row) in table.rows.iter().enumerate() {
        let values: Vec<Sql> = row.iter().map(|(_, v)| v.clone()).collect();
        match existing.remove(&format!("{:?}", key_of(table, row))) {
            Some((_, old)) if old == values => plan.unchanged += 1,
            Some(_) => {
                plan.changed += 1;
                plan.upsert.push(i);
            }
            None => {
                plan.added += 1;
                plan.upsert.push(i);
            }
        }
    }
    plan.removed = existing.into_values().map(|(k, _)| k).collect();
    Ok(plan)
}

/// The table's rows in scope as (key, values of `columns`), by the key's text (SQL values are not `Ord`).
fn current(tx: &Tx<'_>, table: &Table, columns: &[&str]) -> Result<BTreeMap<String, KeyedRow>, StoreError> {
    let keys = table.key.len();
    Ok(store::rows(tx, table.name, table.key, table.scope, columns)?
        .into_iter()
        .map(|mut all| {
            let values = all.split_off(keys);
            (format!("{all:?}"), (all, values))
        })
        .collect())
}

fn write(tx: &Tx<'_>, table: &Table, plan: &Plan) -> Result<(), StoreError> {
    for key in &plan.removed {
        store::delete_row(tx, table.name, table.key, table.scope, key)?;
    }
    for &i in &plan.upsert {
        store::upsert_row(tx, table.name, table.key, &table.rows[i])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    #[test]
    fn the_repository_fixtures_read_without_problems() {
        ReferenceSet::read(&Source::Dir(fixtures())).unwrap();
        ReferenceSet::read(&Source::Embedded).unwrap();
    }

    #[test]
    fn a_folder_with_several_mistakes_reports_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["hs", "checklists", "certificates"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let copy = |rel: &str| std::fs::copy(fixtures().join(rel), dir.path().join(rel)).unwrap();
        for rel in [PRODUCER_RULES, REGISTERED_PRODUCERS, RISK_RULES, CERTIFICATE_TYPES] {
            copy(rel);
        }
        copy("checklists/general_goods.json");
        std::fs::write(
            dir.path().join(HS_CODES),
            r#"{"codes": [{"code": "030363", "chapter": "03", "description_en": "", "description_zh": "",
                "unit": "kg", "category": "frozen_aquatic"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join(SAMPLING_RATIOS),
            r#"{"ratios": [{"chapter": "03", "credit_rating": "excellent", "ratio": 1.5}]}"#,
        )
        .unwrap();
        let problems = ReferenceSet::read(&Source::Dir(dir.path().into())).err().unwrap().0.join("\n");
        for expected in
            ["not 10 digits", "category `frozen_aquatic`", "unknown credit rating", "not between 0 and 1"]
        {
            assert!(problems.contains(expected), "{expected} missing from:\n{problems}");
        }
    }

    #[test]
    fn calendars_of_sites_the_database_lacks_are_problems_naming_the_code_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(dir.path(), 1).unwrap();
        let set = ReferenceSet::read(&Source::Embedded).unwrap();
        let applied = db.write_blocking(|tx| set.apply(tx, 0, &Actor::System));
        let Err(ImportError::Problems(Problems(problems))) = applied else { panic!("{applied:?}") };
        let line = "sites/calendars.json: no inspection site has the code `2201` (create the site first: \
                    `fieldcheck admin create-unit --kind site …`)";
        assert!(problems.iter().any(|p| p == line), "{problems:#?}");
        let risk_rules = db.write_blocking(|tx| store::risk_rules(tx)).unwrap();
        assert!(risk_rules.is_empty(), "{risk_rules:?}");
    }
}
