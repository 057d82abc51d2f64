//! Which [`Fetcher`] serves which [`SourceKind`]: one `match`, so adding a kind is one
//! line here.

use super::feed::{CsvFetcher, FileFetcher, FreetextFetcher, MispFeedFetcher};
use super::{Fetcher, SourceKind};

/// A fresh fetcher for `kind` (fetchers keep no state between passes beyond the
/// cursor, so one per pass is fine).
pub fn fetcher(kind: SourceKind) -> Box<dyn Fetcher> {
    match kind {
        SourceKind::Csv => Box::new(CsvFetcher),
        SourceKind::Freetext => Box::new(FreetextFetcher),
        SourceKind::MispFeed => Box::new(MispFeedFetcher),
        SourceKind::File => Box::new(FileFetcher),
        SourceKind::Misp => Box::new(super::misp_rest::MispRestFetcher::new()),
        SourceKind::Taxii => Box::new(super::taxii::TaxiiFetcher::new()),
    }
}
