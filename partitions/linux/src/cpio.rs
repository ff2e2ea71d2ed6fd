//! A minimal writer for the "newc" (SVR4, no CRC) cpio format the Linux kernel unpacks
//! into its initramfs (see the kernel's `Documentation/driver-api/early-userspace/
//! buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (`070701` followed by thirteen 8-digit hex
//! fields), the NUL-terminated path name padded to a multiple of 4 bytes (counted from the
//! start of the header), then the file data padded to a multiple of 4. The archive ends with
//! an entry named `TRAILER!!!`. Paths are written without a leading `/`; parent directories
//! must be written before their contents. All entries are owned by root with mtime 0 so the
//! output is reproducible.

use std::io::{self, Write};

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;

/// Magic of the newc format.
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// Size of a newc header in bytes.
pub const HEADER_LEN: usize = 110;
/// Name of the terminating entry.
pub const TRAILER: &str = "TRAILER!!!";

/// Streams a newc archive into `W`.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// Adds a directory; `perm` holds the permission bits (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, (0, 0), &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, (0, 0), data)
    }

    /// Adds a symbolic link pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | (perm & 0o7777), 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(TRAILER, 0, 0, 1, (0, 0), 0)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name == TRAILER || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad cpio path {path:?}"),
            ));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio member over 4 GiB"))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.header(name, ino, mode, nlink, rdev, size)?;
        self.put(data)?;
        self.pad()
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        size: u32,
    ) -> io::Result<()> {
        let namesize = name.len() as u32 + 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
        // namesize check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        let mut hdr = String::with_capacity(HEADER_LEN);
        hdr.push_str("070701");
        for f in fields {
            hdr.push_str(&format!("{f:08x}"));
        }
        debug_assert_eq!(hdr.len(), HEADER_LEN);
        self.put(hdr.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One parsed entry: (name, mode, nlink, rdevmajor, rdevminor, data).
    pub(crate) type Entry = (String, u32, u32, u32, u32, Vec<u8>);

    fn hex(field: &[u8]) -> u32 {
        u32::from_str_radix(std::str::from_utf8(field).unwrap(), 16).unwrap()
    }

    /// Independent, strict reader used to check the writer.
    pub(crate) fn parse(buf: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            assert_eq!(pos % 4, 0, "header not 4-byte aligned at {pos}");
            let h = &buf[pos..pos + HEADER_LEN];
            assert_eq!(&h[..6], NEWC_MAGIC);
            assert!(h[6..]
                .iter()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            let field = |i: usize| hex(&h[6 + 8 * i..6 + 8 * (i + 1)]);
            let (mode, uid, gid, nlink, mtime, size) =
                (field(1), field(2), field(3), field(4), field(5), field(6));
            let (rmaj, rmin, namesize, check) = (field(9), field(10), field(11), field(12));
            assert_eq!((uid, gid, mtime, check), (0, 0, 0, 0));
            let name_start = pos + HEADER_LEN;
            let name_end = name_start + namesize as usize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = std::str::from_utf8(&buf[name_start..name_end - 1])
                .unwrap()
                .to_string();
            let data_start = name_end.next_multiple_of(4);
            assert!(buf[name_end..data_start].iter().all(|&b| b == 0));
            let data_end = data_start + size as usize;
            let data = buf[data_start..data_end].to_vec();
            pos = data_end.next_multiple_of(4);
            assert!(buf[data_end..pos].iter().all(|&b| b == 0));
            if name == TRAILER {
                assert_eq!(pos, buf.len(), "bytes after trailer");
                return out;
            }
            out.push((name, mode, nlink, rmaj, rmin, data));
        }
    }

    #[test]
    fn round_trip() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("/bin", 0o755).unwrap();
        w.file("bin/busybox", 0o755, b"\x7fELF fake").unwrap();
        w.symlink("/bin/sh", "busybox").unwrap();
        w.dir("dev", 0o755).unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        let buf = w.finish().unwrap();
        assert_eq!(buf.len() % 4, 0);

        let e = parse(&buf);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "empty"
            ]
        );
        assert_eq!(e[0].1, 0o040755);
        assert_eq!(e[0].2, 2);
        assert_eq!(
            (e[1].1, e[1].5.as_slice()),
            (0o100755, &b"\x7fELF fake"[..])
        );
        assert_eq!((e[2].1, e[2].5.as_slice()), (0o120777, &b"busybox"[..]));
        assert_eq!((e[4].1, e[4].3, e[4].4), (0o020600, 5, 1));
        assert_eq!(e[5].5, b"#!/bin/sh\n");
        assert!(e[6].5.is_empty());
    }

    #[test]
    fn first_header_is_exact() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"xyz").unwrap();
        let buf = w.finish().unwrap();
        let expected = concat!(
            "070701", "00000001", "000081a4", "00000000", "00000000", "00000001", "00000000",
            "00000003", "00000000", "00000000", "00000000", "00000000", "00000002", "00000000"
        );
        assert_eq!(&buf[..HEADER_LEN], expected.as_bytes());
        // name "a\0" ends at 112 (aligned), data "xyz" + 1 pad byte.
        assert_eq!(&buf[HEADER_LEN..HEADER_LEN + 2], b"a\0");
        assert_eq!(&buf[112..116], b"xyz\0");
        assert_eq!(&buf[116..122], b"070701");
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("TRAILER!!!", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}
