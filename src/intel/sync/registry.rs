//! Which [`Fetcher`] serves which [`SourceKind`]: one `match`, so adding a kind is one
//! line here.

use super::feed::{CsvFetcher, FileFetcher, FreetextFetcher, MispFeedFetcher};
use super::{Fetcher, PassContext, PassReport, SourceConfig, SourceKind, SyncError};

/// A fresh fetcher for `kind` (fetchers keep no state between passes beyond the
/// cursor, so one per pass is fine).
pub fn fetcher(kind: SourceKind) -> Box<dyn Fetcher> {
    match kind {
        SourceKind::Csv => Box::new(CsvFetcher),
        SourceKind::Freetext => Box::new(FreetextFetcher),
        SourceKind::MispFeed => Box::new(MispFeedFetcher),
        SourceKind::File => Box::new(FileFetcher),
        SourceKind::Misp => Box::new(NotBuilt(kind)),
        SourceKind::Taxii => Box::new(super::taxii::TaxiiFetcher::new()),
    }
}

/// A kind whose fetcher is not in this build yet: its options are accepted, and every
/// pass fails with a configuration error saying so.
struct NotBuilt(SourceKind);

impl Fetcher for NotBuilt {
    fn check_options(&self, _source: &SourceConfig) -> Result<(), SyncError> {
        Ok(())
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        Err(SyncError::Config {
            source_name: ctx.source.name.clone(),
            key: "kind".into(),
            message: format!("kind \"{}\" is not built yet", self.0.as_str()),
        })
    }
}
