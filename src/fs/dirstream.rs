//! Reading a directory through a handle, one LIST page at a time.
//!
//! `opendir` lists the first page (1,000 names) and fetches the attributes of its files, and
//! each page after it is listed when the kernel reads past the one before. A handle holds one
//! page whatever the directory's size, so the first entries of a directory of 100,000 names
//! come after one LIST instead of a hundred LISTs and 100,000 HEADs, and reading it to the end
//! holds no more than a page (and the names, while they are few enough to keep as the
//! directory's listing: `listing.rs`).
//!
//! Offsets are positions in the listing. Reading from an offset before the page held lists the
//! directory again from its start (`rewinddir`, or a `seekdir` back), skipping up to that
//! offset. A name that is both an object and a prefix (a file and a directory of the same
//! name, which only another client can make) shows twice if a page boundary falls between the
//! two; within a page the file wins, as in a whole listing.

use std::sync::Arc;

use super::attr::Kind;
use super::dir_handle::DirStream;
use super::error::{FsError, FsResult};
use super::listing::MAX_LISTING_NAMES;
use super::namespace::DirEntry;
use super::{Fs, Handle};

impl Fs {
    /// Open directory `ino` for reading: its first page is listed, and the attributes of the
    /// files on it fetched in parallel and cached, so that the `stat` of every entry that
    /// follows (`ls -l`, rsync) costs no request.
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let (path, kind) = self.path_of(ino)?;
        if kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let mut stream = DirStream::new(
            &path,
            &self.dir_prefix(&path),
            self.ns.listings().generation(),
        );
        self.next_page(&mut stream).await?;
        Ok(self.new_fh(Handle::Dir {
            stream: Box::new(tokio::sync::Mutex::new(stream)),
        }))
    }

    /// The page of directory handle `fh` that holds position `from` (listed now if needed),
    /// with the position of its first entry; an empty page past the end.
    pub async fn readdir_page(
        &self,
        fh: u64,
        from: usize,
    ) -> FsResult<(usize, Arc<Vec<DirEntry>>)> {
        let handle = self.handle(fh)?;
        let Handle::Dir { stream } = &*handle else {
            return Err(FsError::NotDir);
        };
        let mut s = stream.lock().await;
        if from < s.start {
            let path = s.path.clone();
            *s = DirStream::new(
                &path,
                &self.dir_prefix(&path),
                self.ns.listings().generation(),
            );
            self.next_page(&mut s).await?;
        }
        while from >= s.start + s.page.len() && s.next.is_some() {
            self.next_page(&mut s).await?;
        }
        Ok((s.start, s.page.clone()))
    }

    /// Every entry of directory handle `fh`, from the start (tools and tests; the kernel
    /// reads a page at a time).
    pub async fn readdir(&self, fh: u64) -> FsResult<Vec<DirEntry>> {
        let mut all = Vec::new();
        loop {
            let (start, page) = self.readdir_page(fh, all.len()).await?;
            let skip = all.len() - start;
            if page.len() <= skip {
                return Ok(all);
            }
            all.extend(page[skip..].iter().cloned());
        }
    }

    /// Entries directory handle `fh` holds (tests).
    pub async fn dir_handle_held(&self, fh: u64) -> FsResult<usize> {
        match &*self.handle(fh)? {
            Handle::Dir { stream } => Ok(stream.lock().await.held()),
            Handle::File { .. } => Err(FsError::NotDir),
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.lock_handles().remove(&fh);
    }

    /// List the next page of `s` in place of the one it holds. After the last page, a
    /// listing whose names were all kept is kept in `self.listings`.
    async fn next_page(&self, s: &mut DirStream) -> FsResult<()> {
        let Some(token) = s.next.take() else {
            return Ok(());
        };
        let first = token.is_none();
        let (mut page, next) = self.list_page(&s.path, token, &mut s.pager).await?;
        if first {
            page.pending = self.pending_in(&s.path).await;
        }
        if let Some(names) = &mut s.names {
            names.extend(page.known_names());
            if names.len() > MAX_LISTING_NAMES {
                s.names = None;
            }
        }
        let entries = self.entries_of(&s.path, page).await;
        s.start += s.page.len();
        s.page = Arc::new(entries);
        s.next = next.map(Some);
        if s.next.is_none()
            && let Some(names) = s.names.take()
        {
            (self.ns.listings()).put(&s.path, names, s.started, s.generation);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::ffi::OsStr;

    use super::super::lifetime_tests::{fs, write_file};

    /// A directory of 2,500 files (three LIST pages), read as the kernel does: a page at a
    /// time, from offsets; the handle never holds more than one page.
    #[tokio::test]
    async fn a_directory_handle_holds_one_page_and_reads_every_entry_once() {
        let (fs, _staging) = fs();
        let d = fs
            .mkdir(1, OsStr::new("d"), 0o755, 0, 0)
            .await
            .expect("mkdir");
        for i in 0..2_500 {
            write_file(&fs, d.ino, &format!("f{i:04}")).await;
        }
        fs.invalidate_caches();
        let fh = fs.opendir(d.ino).await.expect("opendir");
        // One LIST page: 1,000 keys, the directory's own marker among them.
        assert_eq!(fs.dir_handle_held(fh).await.expect("held"), 999);
        let mut seen = Vec::new();
        loop {
            // The kernel asks for a few KiB at a time, from the offset it reached.
            let (start, page) = fs.readdir_page(fh, seen.len()).await.expect("readdir");
            let fresh: Vec<String> = (page.iter().skip(seen.len() - start).take(100))
                .map(|e| e.name.clone())
                .collect();
            if fresh.is_empty() {
                break;
            }
            seen.extend(fresh);
            assert!(fs.dir_handle_held(fh).await.expect("held") <= 1000);
        }
        assert_eq!(seen.len(), 2_500);
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), 2_500);
        // Back to the start (rewinddir): listed again, the same entries.
        let again = fs.readdir(fh).await.expect("readdir again");
        let names: Vec<String> = again.into_iter().map(|e| e.name).collect();
        assert_eq!(names, seen);
        fs.releasedir(fh);
    }
}
