//! HPACK (RFC 7541), the decoding half: enough to read the header blocks a gRPC
//! server answers with, whatever representation and Huffman coding it chooses.
//! Requests are encoded by the caller with literals that need no table.

/// The static table (Appendix A); index 1 is the first entry.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The bit length of each symbol's Huffman code (Appendix B; 256 is EOS). The code
/// is canonical: codes are handed out in order of length, then of symbol, so the
/// lengths alone define it.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const MAX_CODE: usize = 30;

/// What went wrong in a header block: the connection cannot go on (a
/// COMPRESSION_ERROR in HTTP/2's words).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A connection's decoding context: the dynamic table its header blocks build.
pub struct Decoder {
    /// Newest first, as indices count them.
    dynamic: std::collections::VecDeque<(String, String)>,
    size: usize,
    /// What SETTINGS_HEADER_TABLE_SIZE allows (the default: 4096).
    max: usize,
    /// What the encoder last chose, at most `max`.
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            dynamic: Default::default(),
            size: 0,
            max: 4096,
            limit: 4096,
        }
    }
}

impl Decoder {
    /// The header fields of one complete block, in order.
    pub fn decode(&mut self, mut block: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
        let mut fields = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // Indexed field.
                let i = integer(&mut block, 7)?;
                fields.push(self.entry(i)?);
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update.
                let size = integer(&mut block, 5)?;
                if size > self.max {
                    return Err(Malformed("table size update over the limit"));
                }
                self.limit = size;
                self.evict(0);
            } else {
                // Literal: with incremental indexing (01), or without / never (000x).
                let (prefix, index) = if first & 0x40 != 0 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name = match integer(&mut block, prefix)? {
                    0 => string(&mut block)?,
                    i => self.entry(i)?.0,
                };
                let value = string(&mut block)?;
                if index {
                    self.insert(name.clone(), value.clone());
                }
                fields.push((name, value));
            }
        }
        Ok(fields)
    }

    fn entry(&self, i: usize) -> Result<(String, String), Malformed> {
        let (name, value) = match i {
            0 => return Err(Malformed("index 0")),
            1..=61 => {
                let (n, v) = STATIC[i - 1];
                (n.to_string(), v.to_string())
            }
            _ => self
                .dynamic
                .get(i - 62)
                .cloned()
                .ok_or(Malformed("index past the tables"))?,
        };
        Ok((name, value))
    }

    fn insert(&mut self, name: String, value: String) {
        // An entry's size counts 32 bytes of overhead (section 4.1).
        let size = name.len() + value.len() + 32;
        self.evict(size);
        if size <= self.limit {
            self.size += size;
            self.dynamic.push_front((name, value));
        }
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.limit {
            let Some((n, v)) = self.dynamic.pop_back() else {
                break;
            };
            self.size -= n.len() + v.len() + 32;
        }
    }
}

/// An integer with an N-bit prefix (section 5.1).
fn integer(block: &mut &[u8], prefix: u8) -> Result<usize, Malformed> {
    let (&first, rest) = block.split_first().ok_or(Malformed("truncated integer"))?;
    *block = rest;
    let mask = (1usize << prefix) - 1;
    let mut n = usize::from(first) & mask;
    if n < mask {
        return Ok(n);
    }
    for shift in (0..28).step_by(7) {
        let (&b, rest) = block.split_first().ok_or(Malformed("truncated integer"))?;
        *block = rest;
        n += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(Malformed("integer too large"))
}

/// A string literal, Huffman coded or not (section 5.2).
fn string(block: &mut &[u8]) -> Result<String, Malformed> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if block.len() < len {
        return Err(Malformed("truncated string"));
    }
    let (bytes, rest) = block.split_at(len);
    *block = rest;
    let bytes = if huffman {
        huffman_decode(bytes)?
    } else {
        bytes.to_vec()
    };
    String::from_utf8(bytes).map_err(|_| Malformed("a header that is not UTF-8"))
}

/// The canonical code's tables, made once: symbols in code order, and per length how
/// many codes, the first code, and where its symbols start in that order.
struct Canonical {
    symbols: Vec<u16>,
    count: [u32; MAX_CODE + 1],
    first: [u32; MAX_CODE + 1],
    start: [u32; MAX_CODE + 1],
}

fn canonical() -> &'static Canonical {
    static TABLES: std::sync::OnceLock<Canonical> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..257).collect();
        symbols.sort_by_key(|&s| (HUFFMAN_LENGTHS[usize::from(s)], s));
        let mut count = [0u32; MAX_CODE + 1];
        for &l in &HUFFMAN_LENGTHS {
            count[usize::from(l)] += 1;
        }
        let (mut first, mut start) = ([0u32; MAX_CODE + 1], [0u32; MAX_CODE + 1]);
        let (mut code, mut index) = (0u32, 0u32);
        for len in 1..=MAX_CODE {
            first[len] = code;
            start[len] = index;
            code = (code + count[len]) << 1;
            index += count[len];
        }
        Canonical {
            symbols,
            count,
            first,
            start,
        }
    })
}

/// Decodes a canonical Huffman string bit by bit: at each length, the codes of that
/// length are a run starting at `first[len]`.
fn huffman_decode(bytes: &[u8]) -> Result<Vec<u8>, Malformed> {
    let Canonical {
        symbols,
        count,
        first,
        start,
    } = canonical();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for bit in bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
    {
        code = (code << 1) | u32::from(bit);
        len += 1;
        if len > MAX_CODE {
            return Err(Malformed("bad Huffman code"));
        }
        let offset = code.wrapping_sub(first[len]);
        if offset < count[len] {
            let symbol = symbols[(start[len] + offset) as usize];
            let byte = u8::try_from(symbol).map_err(|_| Malformed("EOS in a string"))?;
            out.push(byte);
            (code, len) = (0, 0);
        }
    }
    // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len >= 8 || code != (1 << len) - 1 {
        return Err(Malformed("bad Huffman padding"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn integers_as_in_the_rfc() {
        // C.1.1 - C.1.3.
        assert_eq!(integer(&mut &[0x0a][..], 5), Ok(10));
        assert_eq!(integer(&mut &[0x1f, 0x9a, 0x0a][..], 5), Ok(1337));
        assert_eq!(integer(&mut &[0x2a][..], 8), Ok(42));
        assert!(integer(&mut &[0x1f, 0xff][..], 5).is_err());
        assert!(integer(&mut &[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f][..], 5).is_err());
    }

    #[test]
    fn responses_with_huffman_and_the_dynamic_table_as_in_the_rfc() {
        // C.6: three responses with Huffman coding, a 256-byte table evicting.
        let mut d = Decoder {
            max: 256,
            limit: 256,
            ..Default::default()
        };
        let first = d
            .decode(&hex(
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            ))
            .unwrap();
        assert_eq!(
            first,
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        assert_eq!(d.size, 222);
        let second = d.decode(&hex("4883 640e ff c1 c0 bf")).unwrap();
        assert_eq!(second[0], (":status".into(), "307".into()));
        assert_eq!(
            second[3],
            ("location".into(), "https://www.example.com".into())
        );
        let third = d
            .decode(&hex(
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ))
            .unwrap();
        assert_eq!(
            third,
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(d.size, 215);
    }

    #[test]
    fn literals_without_indexing_and_bad_blocks() {
        // C.2.2: literal without indexing, indexed name.
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(&hex("040c 2f73 616d 706c 652f 7061 7468"))
                .unwrap(),
            pairs(&[(":path", "/sample/path")])
        );
        assert!(d.dynamic.is_empty());
        assert_eq!(d.decode(&[0x80]), Err(Malformed("index 0")));
        assert_eq!(d.decode(&[0xbe]), Err(Malformed("index past the tables")));
        assert_eq!(
            d.decode(&[0x04, 0x05, b'/']),
            Err(Malformed("truncated string"))
        );
        // A Huffman string padded with zeros, and one that is all EOS.
        assert!(d.decode(&[0x04, 0x81, 0x00]).is_err());
        assert!(d.decode(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
