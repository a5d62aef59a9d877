//! Persistence of the image objects in one embedded ACID database file
//! ([redb]), or in memory.
//!
//! Tables: `imagestreams` keyed by `(namespace, name)`, `images` keyed by
//! digest (values are the objects' JSON), and `meta` holding the global
//! `resourceVersion` counter. Every write of an object takes the next
//! counter value as its `metadata.resourceVersion`. One API call is one
//! [`Txn`]: committed as a whole or not at all (dropping it aborts).

use std::ops::Bound;
use std::path::Path;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use serde::{de::DeserializeOwned, Serialize};

use super::images::{Image, ImageStream};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const STREAMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("imagestreams");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const RESOURCE_VERSION: &str = "resourceVersion";

type StreamKey = (&'static str, &'static str);
type Bytes = &'static [u8];

/// A store failure. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open object store {path}: {message}")]
    Open { path: String, message: String },
    #[error("object store: {0}")]
    Db(String),
    #[error("object store: corrupt {what}: {message}")]
    Corrupt { what: String, message: String },
    #[error("object store: write in a read-only transaction")]
    ReadOnly,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The object store.
pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if missing) the database file `path`, or an in-memory store.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(in memory)".to_string()),
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        let db = match path {
            Some(p) => Database::create(p).map_err(|e| open_err(e.to_string()))?,
            None => Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(|e| open_err(e.to_string()))?,
        };
        let store = Store { db };
        // Create the tables so that read transactions can open them.
        let tx = store
            .db
            .begin_write()
            .map_err(|e| open_err(e.to_string()))?;
        {
            tx.open_table(META).map_err(|e| open_err(e.to_string()))?;
            tx.open_table(STREAMS)
                .map_err(|e| open_err(e.to_string()))?;
            tx.open_table(IMAGES).map_err(|e| open_err(e.to_string()))?;
        }
        tx.commit().map_err(|e| open_err(e.to_string()))?;
        Ok(store)
    }

    /// A read-only snapshot.
    pub fn read(&self) -> Result<Txn, StoreError> {
        Ok(Txn {
            inner: Inner::Read(self.db.begin_read().map_err(db_err)?),
        })
    }

    /// A write transaction (writers are serialised); [`Txn::commit`] to keep its changes.
    pub fn write(&self) -> Result<Txn, StoreError> {
        Ok(Txn {
            inner: Inner::Write(Box::new(self.db.begin_write().map_err(db_err)?)),
        })
    }
}

enum Inner {
    Read(ReadTransaction),
    Write(Box<WriteTransaction>),
}

/// A transaction: reads see a consistent snapshot (plus the transaction's own writes).
pub struct Txn {
    inner: Inner,
}

/// Where a list starts and how many items it returns.
#[derive(Clone, Debug, Default)]
pub struct Page<'a> {
    /// Resume strictly after this key.
    pub after: Option<&'a str>,
    /// At most this many items; 0 = all.
    pub limit: usize,
}

/// A page of a list: the items and whether more follow.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub more: bool,
}

fn decode<T: DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: what(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(db_err)
}

/// Key of a stream in continue tokens: `<namespace>/<name>`.
pub fn stream_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn get_stream<T: ReadableTable<StreamKey, Bytes>>(
    t: &T,
    ns: &str,
    name: &str,
) -> Result<Option<ImageStream>, StoreError> {
    match t.get((ns, name)).map_err(db_err)? {
        Some(v) => Ok(Some(decode(
            || format!("imagestream {ns}/{name}"),
            v.value(),
        )?)),
        None => Ok(None),
    }
}

fn list_streams<T: ReadableTable<StreamKey, Bytes>>(
    t: &T,
    namespace: Option<&str>,
    page: &Page<'_>,
    filter: &dyn Fn(&ImageStream) -> bool,
) -> Result<Listed<ImageStream>, StoreError> {
    let after = page.after.and_then(|k| k.split_once('/'));
    let start: Bound<(&str, &str)> = match (after, namespace) {
        (Some(a), Some(ns)) if a.0 == ns => Bound::Excluded(a),
        (Some(a), Some(ns)) if a.0 > ns => {
            return Ok(Listed {
                items: Vec::new(),
                more: false,
            })
        }
        (_, Some(ns)) => Bound::Included((ns, "")),
        (Some(a), None) => Bound::Excluded(a),
        (None, None) => Bound::Unbounded,
    };
    let range = t
        .range::<(&str, &str)>((start, Bound::Unbounded))
        .map_err(db_err)?;
    let mut items = Vec::new();
    for entry in range {
        let (k, v) = entry.map_err(db_err)?;
        let (ns, name) = k.value();
        if namespace.is_some_and(|want| want != ns) {
            break;
        }
        let stream: ImageStream = decode(|| format!("imagestream {ns}/{name}"), v.value())?;
        if !filter(&stream) {
            continue;
        }
        if page.limit > 0 && items.len() == page.limit {
            return Ok(Listed { items, more: true });
        }
        items.push(stream);
    }
    Ok(Listed { items, more: false })
}

fn count_streams<T: ReadableTable<StreamKey, Bytes>>(
    t: &T,
    namespace: &str,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for entry in t.range::<(&str, &str)>((namespace, "")..).map_err(db_err)? {
        let (k, _) = entry.map_err(db_err)?;
        if k.value().0 != namespace {
            break;
        }
        n += 1;
    }
    Ok(n)
}

fn get_image<T: ReadableTable<&'static str, Bytes>>(
    t: &T,
    digest: &str,
) -> Result<Option<Image>, StoreError> {
    match t.get(digest).map_err(db_err)? {
        Some(v) => Ok(Some(decode(|| format!("image {digest}"), v.value())?)),
        None => Ok(None),
    }
}

fn list_images<T: ReadableTable<&'static str, Bytes>>(
    t: &T,
    page: &Page<'_>,
    filter: &dyn Fn(&Image) -> bool,
) -> Result<Listed<Image>, StoreError> {
    let start = match page.after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Unbounded,
    };
    let range = t.range::<&str>((start, Bound::Unbounded)).map_err(db_err)?;
    let mut items = Vec::new();
    for entry in range {
        let (k, v) = entry.map_err(db_err)?;
        let image: Image = decode(|| format!("image {}", k.value()), v.value())?;
        if !filter(&image) {
            continue;
        }
        if page.limit > 0 && items.len() == page.limit {
            return Ok(Listed { items, more: true });
        }
        items.push(image);
    }
    Ok(Listed { items, more: false })
}

fn get_resource_version<T: ReadableTable<&'static str, u64>>(t: &T) -> Result<u64, StoreError> {
    Ok(t.get(RESOURCE_VERSION)
        .map_err(db_err)?
        .map(|g| g.value())
        .unwrap_or(0))
}

impl Txn {
    fn streams_ro(&self) -> Result<Option<ReadOnlyTable<StreamKey, Bytes>>, StoreError> {
        match &self.inner {
            Inner::Read(tx) => Ok(Some(tx.open_table(STREAMS).map_err(db_err)?)),
            Inner::Write(_) => Ok(None),
        }
    }

    fn streams_rw(&self) -> Result<Table<'_, StreamKey, Bytes>, StoreError> {
        match &self.inner {
            Inner::Write(tx) => tx.open_table(STREAMS).map_err(db_err),
            Inner::Read(_) => Err(StoreError::ReadOnly),
        }
    }

    fn images_ro(&self) -> Result<Option<ReadOnlyTable<&'static str, Bytes>>, StoreError> {
        match &self.inner {
            Inner::Read(tx) => Ok(Some(tx.open_table(IMAGES).map_err(db_err)?)),
            Inner::Write(_) => Ok(None),
        }
    }

    fn images_rw(&self) -> Result<Table<'_, &'static str, Bytes>, StoreError> {
        match &self.inner {
            Inner::Write(tx) => tx.open_table(IMAGES).map_err(db_err),
            Inner::Read(_) => Err(StoreError::ReadOnly),
        }
    }

    /// The stream `namespace/name`.
    pub fn stream(&self, namespace: &str, name: &str) -> Result<Option<ImageStream>, StoreError> {
        match self.streams_ro()? {
            Some(t) => get_stream(&t, namespace, name),
            None => get_stream(&self.streams_rw()?, namespace, name),
        }
    }

    /// Streams sorted by namespace then name (`namespace`: only that one) that
    /// pass `filter`. `page.after` is a [`stream_key`].
    pub fn streams(
        &self,
        namespace: Option<&str>,
        page: &Page<'_>,
        filter: &dyn Fn(&ImageStream) -> bool,
    ) -> Result<Listed<ImageStream>, StoreError> {
        match self.streams_ro()? {
            Some(t) => list_streams(&t, namespace, page, filter),
            None => list_streams(&self.streams_rw()?, namespace, page, filter),
        }
    }

    /// Number of streams in `namespace`.
    pub fn count_streams(&self, namespace: &str) -> Result<u64, StoreError> {
        match self.streams_ro()? {
            Some(t) => count_streams(&t, namespace),
            None => count_streams(&self.streams_rw()?, namespace),
        }
    }

    /// The image `digest`.
    pub fn image(&self, digest: &str) -> Result<Option<Image>, StoreError> {
        match self.images_ro()? {
            Some(t) => get_image(&t, digest),
            None => get_image(&self.images_rw()?, digest),
        }
    }

    /// Images sorted by digest that pass `filter`.
    pub fn images(
        &self,
        page: &Page<'_>,
        filter: &dyn Fn(&Image) -> bool,
    ) -> Result<Listed<Image>, StoreError> {
        match self.images_ro()? {
            Some(t) => list_images(&t, page, filter),
            None => list_images(&self.images_rw()?, page, filter),
        }
    }

    /// The current global resource version (0 for an empty store).
    pub fn resource_version(&self) -> Result<u64, StoreError> {
        match &self.inner {
            Inner::Read(tx) => get_resource_version(&tx.open_table(META).map_err(db_err)?),
            Inner::Write(tx) => get_resource_version(&tx.open_table(META).map_err(db_err)?),
        }
    }

    /// Take the next resource version.
    fn next_resource_version(&mut self) -> Result<u64, StoreError> {
        let Inner::Write(tx) = &self.inner else {
            return Err(StoreError::ReadOnly);
        };
        let mut t = tx.open_table(META).map_err(db_err)?;
        let current = get_resource_version(&t)?;
        let next = current
            .checked_add(1)
            .ok_or_else(|| StoreError::Db("resourceVersion overflow".into()))?;
        t.insert(RESOURCE_VERSION, next).map_err(db_err)?;
        Ok(next)
    }

    /// Write `stream` (create or replace) with the next resource version, which is
    /// set in `stream.metadata.resourceVersion`.
    pub fn put_stream(&mut self, stream: &mut ImageStream) -> Result<(), StoreError> {
        let rv = self.next_resource_version()?;
        stream.metadata.resource_version = rv.to_string();
        let bytes = encode(stream)?;
        let mut t = self.streams_rw()?;
        t.insert(
            (
                stream.metadata.namespace.as_str(),
                stream.metadata.name.as_str(),
            ),
            bytes.as_slice(),
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// Delete a stream; `false` if it did not exist.
    pub fn delete_stream(&mut self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        let existed = self
            .streams_rw()?
            .remove((namespace, name))
            .map_err(db_err)?
            .is_some();
        if existed {
            self.next_resource_version()?;
        }
        Ok(existed)
    }

    /// Write `image` (create or replace) with the next resource version.
    pub fn put_image(&mut self, image: &mut Image) -> Result<(), StoreError> {
        let rv = self.next_resource_version()?;
        image.metadata.resource_version = rv.to_string();
        let bytes = encode(image)?;
        let mut t = self.images_rw()?;
        t.insert(image.metadata.name.as_str(), bytes.as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    /// Delete an image; `false` if it did not exist.
    pub fn delete_image(&mut self, digest: &str) -> Result<bool, StoreError> {
        let existed = self.images_rw()?.remove(digest).map_err(db_err)?.is_some();
        if existed {
            self.next_resource_version()?;
        }
        Ok(existed)
    }

    /// Commit a write transaction (a no-op for a read one).
    pub fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Write(tx) => tx.commit().map_err(db_err),
            Inner::Read(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(ns: &str, name: &str) -> ImageStream {
        let mut s = ImageStream::default();
        s.metadata.namespace = ns.into();
        s.metadata.name = name.into();
        s
    }

    fn image(digest: &str, label: &str) -> Image {
        let mut i = Image::default();
        i.metadata.name = digest.into();
        i.metadata.labels.insert("l".into(), label.into());
        i
    }

    fn page(after: Option<&str>, limit: usize) -> Page<'_> {
        Page { after, limit }
    }

    fn temp_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        (dir, p)
    }

    #[test]
    fn resource_versions_increase_per_write() {
        let store = Store::open(None).unwrap();
        assert_eq!(store.read().unwrap().resource_version().unwrap(), 0);
        let mut tx = store.write().unwrap();
        let mut a = stream("ns", "a");
        tx.put_stream(&mut a).unwrap();
        let mut i = image("sha256:1", "x");
        tx.put_image(&mut i).unwrap();
        tx.commit().unwrap();
        assert_eq!(a.metadata.resource_version, "1");
        assert_eq!(i.metadata.resource_version, "2");
        let r = store.read().unwrap();
        assert_eq!(r.resource_version().unwrap(), 2);
        assert_eq!(
            r.stream("ns", "a")
                .unwrap()
                .unwrap()
                .metadata
                .resource_version,
            "1"
        );
        assert_eq!(r.image("sha256:1").unwrap().unwrap(), i);
        assert!(r.stream("ns", "b").unwrap().is_none());
        // Writes in a read transaction are refused.
        let mut r = store.read().unwrap();
        assert!(matches!(r.put_stream(&mut a), Err(StoreError::ReadOnly)));
    }

    #[test]
    fn aborted_transaction_leaves_previous_state() {
        let store = Store::open(None).unwrap();
        let mut tx = store.write().unwrap();
        tx.put_stream(&mut stream("ns", "a")).unwrap();
        tx.commit().unwrap();
        {
            let mut tx = store.write().unwrap();
            tx.put_stream(&mut stream("ns", "b")).unwrap();
            assert!(tx.delete_stream("ns", "a").unwrap());
            // Own writes are visible inside the transaction.
            assert!(tx.stream("ns", "b").unwrap().is_some());
            // Dropped without commit.
        }
        let r = store.read().unwrap();
        assert!(r.stream("ns", "a").unwrap().is_some());
        assert!(r.stream("ns", "b").unwrap().is_none());
        assert_eq!(r.resource_version().unwrap(), 1);
    }

    #[test]
    fn stream_listing_order_and_pages() {
        let store = Store::open(None).unwrap();
        let mut tx = store.write().unwrap();
        for (ns, name) in [
            ("b", "x"),
            ("a-b", "y"),
            ("a", "z"),
            ("a", "c"),
            ("ab", "q"),
        ] {
            tx.put_stream(&mut stream(ns, name)).unwrap();
        }
        tx.commit().unwrap();
        let r = store.read().unwrap();
        let all_streams = |_: &ImageStream| true;
        assert_eq!(r.count_streams("a").unwrap(), 2);
        assert_eq!(r.count_streams("a-").unwrap(), 0);
        let keys = |l: &Listed<ImageStream>| {
            l.items
                .iter()
                .map(|s| stream_key(&s.metadata.namespace, &s.metadata.name))
                .collect::<Vec<_>>()
        };
        let all = r.streams(None, &Page::default(), &all_streams).unwrap();
        assert_eq!(keys(&all), ["a/c", "a/z", "a-b/y", "ab/q", "b/x"]);
        assert!(!all.more);
        let p1 = r.streams(None, &page(None, 2), &all_streams).unwrap();
        assert_eq!(keys(&p1), ["a/c", "a/z"]);
        assert!(p1.more);
        let p2 = r
            .streams(None, &page(Some("a/z"), 2), &all_streams)
            .unwrap();
        assert_eq!(keys(&p2), ["a-b/y", "ab/q"]);
        assert!(p2.more);
        let p3 = r
            .streams(None, &page(Some("ab/q"), 2), &all_streams)
            .unwrap();
        assert_eq!(keys(&p3), ["b/x"]);
        assert!(!p3.more);
        let ns = r
            .streams(Some("a"), &Page::default(), &all_streams)
            .unwrap();
        assert_eq!(keys(&ns), ["a/c", "a/z"]);
        let ns = r
            .streams(Some("a"), &page(Some("a/c"), 1), &all_streams)
            .unwrap();
        assert_eq!(keys(&ns), ["a/z"]);
        assert!(!ns.more);
        assert!(r
            .streams(Some("zz"), &Page::default(), &all_streams)
            .unwrap()
            .items
            .is_empty());
    }

    #[test]
    fn image_listing_with_filter() {
        let store = Store::open(None).unwrap();
        let mut tx = store.write().unwrap();
        for (d, l) in [("sha256:3", "x"), ("sha256:1", "x"), ("sha256:2", "y")] {
            tx.put_image(&mut image(d, l)).unwrap();
        }
        tx.commit().unwrap();
        let r = store.read().unwrap();
        let only_x = |i: &Image| i.metadata.labels.get("l").is_some_and(|v| v == "x");
        let l = r.images(&page(None, 1), &only_x).unwrap();
        assert_eq!(l.items[0].metadata.name, "sha256:1");
        assert!(l.more);
        let l = r.images(&page(Some("sha256:1"), 1), &only_x).unwrap();
        assert_eq!(l.items[0].metadata.name, "sha256:3");
        assert!(!l.more);
    }

    #[test]
    fn restart_keeps_everything() {
        let (_dir, path) = temp_path("api.db");
        {
            let store = Store::open(Some(&path)).unwrap();
            let mut tx = store.write().unwrap();
            tx.put_stream(&mut stream("ns", "a")).unwrap();
            tx.put_image(&mut image("sha256:1", "x")).unwrap();
            tx.commit().unwrap();
            // An uncommitted transaction is lost.
            let mut tx = store.write().unwrap();
            tx.put_stream(&mut stream("ns", "lost")).unwrap();
            drop(tx);
        }
        let store = Store::open(Some(&path)).unwrap();
        let r = store.read().unwrap();
        assert_eq!(r.resource_version().unwrap(), 2);
        assert!(r.stream("ns", "a").unwrap().is_some());
        assert!(r.stream("ns", "lost").unwrap().is_none());
        assert!(r.image("sha256:1").unwrap().is_some());
        drop(r);
        let mut tx = store.write().unwrap();
        let mut s = stream("ns", "b");
        tx.put_stream(&mut s).unwrap();
        assert_eq!(s.metadata.resource_version, "3");
    }

    #[test]
    fn open_errors_are_one_line() {
        let e = Store::open(Some(Path::new("/nonexistent/dir/api.db"))).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("cannot open object store /nonexistent/dir/api.db:"),
            "{s}"
        );
        assert!(!s.contains('\n'));
    }
}
