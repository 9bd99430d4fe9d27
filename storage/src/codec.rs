//! Byte-level helpers for values: an explicit little-endian writer and a
//! bounds-checked reader that reports short input instead of panicking.
//! Public so that what travels between a cluster's nodes (a query's
//! partial results) is written the one way stored values are.

/// Appends fixed-width little-endian fields to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub fn with_tag(tag: u8, capacity: usize) -> Writer {
        let mut buf = Vec::with_capacity(capacity + 1);
        buf.push(tag);
        Writer { buf }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    /// Bytes written so far, the tag included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Whether nothing was written, not even a tag.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Why bytes failed to decode; turned into a corruption error with its key by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) fn derr<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// The error of a stored float that is not finite, out of line.
#[cold]
#[inline(never)]
fn non_finite<T>(v: impl std::fmt::Display) -> Result<T, DecodeError> {
    derr(format!("non-finite float {v}"))
}

/// Stored bytes as a string, which they must be.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).or_else(|_| derr("invalid UTF-8 in string"))
}

/// Reads fixed-width little-endian fields, failing on short input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => self.truncated(n),
        }
    }
    /// The error of a read of `n` bytes past the end, kept out of line so
    /// that every read's fast path inlines.
    #[cold]
    #[inline(never)]
    fn truncated<T>(&self, n: usize) -> Result<T, DecodeError> {
        derr(format!(
            "truncated: needed {n} bytes at offset {}, have {}",
            self.pos,
            self.remaining()
        ))
    }
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// The next byte, left unread.
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    #[inline]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// A float that must be finite: stored state never holds NaN or infinity.
    #[inline]
    pub fn finite(&mut self) -> Result<f64, DecodeError> {
        let v = self.f64()?;
        if v.is_finite() { Ok(v) } else { non_finite(v) }
    }
    /// Appends `n` stored f64s, each finite, to `out`.
    pub fn finites_into(&mut self, n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
        self.floats_into(n, out, f64::from_le_bytes, f64::is_finite)
    }
    /// Appends `n` stored f32s, each finite, to `out`, widened to f64.
    pub fn f32s_as_f64_into(&mut self, n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
        self.floats_into(n, out, |b| f64::from(f32::from_le_bytes(b)), f64::is_finite)
    }
    /// Appends `n` stored floats of `W` bytes each, as `read` reads them, to
    /// `out`, in one bounds check; an error unless each is `finite`.
    fn floats_into<const W: usize, T: Copy + std::fmt::Display>(
        &mut self,
        n: usize,
        out: &mut Vec<T>,
        read: impl Fn([u8; W]) -> T,
        finite: impl Fn(T) -> bool,
    ) -> Result<(), DecodeError> {
        let Some(len) = n.checked_mul(W) else {
            return derr(format!("{n} floats is more than memory holds"));
        };
        let bytes = self.take(len)?;
        let start = out.len();
        out.extend(
            bytes
                .chunks_exact(W)
                .map(|c| read(c.try_into().unwrap_or([0; W]))),
        );
        match out[start..].iter().find(|&&x| !finite(x)) {
            Some(&v) => non_finite(v),
            None => Ok(()),
        }
    }
    /// A stored f32 that must be finite.
    #[inline]
    pub fn f32(&mut self) -> Result<f32, DecodeError> {
        let v = f32::from_le_bytes(self.array()?);
        if v.is_finite() { Ok(v) } else { non_finite(v) }
    }
    /// Appends `n` stored f32s, each finite, to `out`.
    pub fn f32s_into(&mut self, n: usize, out: &mut Vec<f32>) -> Result<(), DecodeError> {
        self.floats_into(n, out, f32::from_le_bytes, f32::is_finite)
    }
    /// A stored f64 that must be finite as an f32 too.
    pub fn f64_as_f32(&mut self) -> Result<f32, DecodeError> {
        let v = self.finite()?;
        let x = v as f32;
        if x.is_finite() {
            Ok(x)
        } else {
            derr(format!("{v} does not fit an f32"))
        }
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        utf8(self.bytes()?)
    }
    pub fn end(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            derr(format!("{} trailing bytes", self.remaining()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_arrays_in_bulk() -> Result<(), DecodeError> {
        let xs = [1.5f64, -0.0, 3e300, -7.25];
        let mut w = Writer::with_tag(1, 64);
        for x in xs {
            w.f64(x);
        }
        let b = w.finish();
        let mut out = vec![9.0];
        let mut r = Reader::new(&b);
        assert_eq!(r.u8()?, 1);
        r.finites_into(xs.len(), &mut out)?;
        r.end()?;
        assert_eq!(out, [9.0, 1.5, -0.0, 3e300, -7.25]);
        // One short, and a count whose bytes overflow.
        let mut r = Reader::new(&b[1..b.len() - 1]);
        let e = r
            .finites_into(xs.len(), &mut Vec::new())
            .expect_err("one byte short");
        assert!(
            e.to_string().starts_with("truncated: needed 32 bytes"),
            "{e}"
        );
        assert!(
            Reader::new(&b)
                .finites_into(usize::MAX, &mut Vec::new())
                .is_err()
        );
        // A NaN or an infinity anywhere is refused by name.
        for bad in [f64::NAN, f64::INFINITY] {
            let mut w = Writer::with_tag(1, 32);
            w.f64(2.0);
            w.f64(bad);
            let b = w.finish();
            let e = Reader::new(&b[1..])
                .finites_into(2, &mut Vec::new())
                .expect_err("not finite");
            assert_eq!(e.to_string(), format!("non-finite float {bad}"));
        }
        Ok(())
    }

    #[test]
    fn round_trip_and_short_input() -> Result<(), DecodeError> {
        let mut w = Writer::with_tag(7, 32);
        w.u32(5);
        w.i64(-3);
        w.f64(1.5);
        w.bytes(b"hi");
        let b = w.finish();
        let mut r = Reader::new(&b);
        assert_eq!(r.u8()?, 7);
        assert_eq!(r.u32()?, 5);
        assert_eq!(r.i64()?, -3);
        assert_eq!(r.f64()?, 1.5);
        assert_eq!(r.str()?, "hi");
        r.end()?;
        for n in 0..b.len() {
            let mut r = Reader::new(&b[..n]);
            let res = (|| -> Result<(), DecodeError> {
                r.u8()?;
                r.u32()?;
                r.i64()?;
                r.f64()?;
                r.str()?;
                Ok(())
            })();
            assert!(res.is_err(), "prefix of {n} bytes decoded");
        }
        Ok(())
    }
}
