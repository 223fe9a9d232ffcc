//! The RTP fixed header (RFC 3550 §5.1): parse and write.
//!
//! [`RtpPacket::parse`] borrows the datagram: it checks the version (2), strips padding (the
//! last octet counts the padding octets, itself included, and must fit in what follows the
//! header), skips a header extension (§5.3.1: its content is not interpreted) and exposes the
//! CSRC list, the marker, payload type, sequence number, timestamp, SSRC and payload. Any
//! malformed input gives an [`Error`], never a panic. [`RtpPacket::write`] prints a packet
//! without padding or extension (we never send either).
//!
//! ```
//! use ivr::rtp::{packet::RtpPacket, Ssrc};
//! let pkt = RtpPacket::new(0, 7, 160, Ssrc(0x1234), &[0xFF; 160]).with_marker(true);
//! let mut wire = Vec::new();
//! pkt.write(&mut wire);
//! let back = RtpPacket::parse(&wire).unwrap();
//! assert_eq!((back.sequence, back.timestamp, back.marker), (7, 160, true));
//! assert_eq!(back.payload.len(), 160);
//! ```

use super::{Error, Ssrc};

/// Octets in the fixed RTP header (no CSRCs, no extension).
pub const HEADER_LEN: usize = 12;

/// One RTP packet, borrowing the datagram it was parsed from (or the payload it was built
/// around).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (for audio: first packet of a talkspurt, RFC 3551 §4.1).
    pub marker: bool,
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The timestamp, in units of the payload's clock (8000 Hz here).
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: Ssrc,
    /// The CSRC list as raw big-endian words (read with [`RtpPacket::csrcs`]).
    csrc: &'a [u8],
    /// The payload, padding removed.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// A packet with no CSRCs and the marker clear. `payload_type` is masked to 7 bits.
    pub fn new(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: Ssrc,
        payload: &'a [u8],
    ) -> Self {
        RtpPacket {
            marker: false,
            payload_type: payload_type & 0x7F,
            sequence,
            timestamp,
            ssrc,
            csrc: &[],
            payload,
        }
    }

    /// The same packet with the marker bit set to `marker`.
    pub fn with_marker(self, marker: bool) -> Self {
        RtpPacket { marker, ..self }
    }

    /// Parses one RTP packet (RFC 3550 §5.1).
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "RTP header",
                needed: HEADER_LEN,
                len: buf.len(),
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(Error::Version(version));
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let csrc_count = usize::from(buf[0] & 0x0F);
        let marker = buf[1] & 0x80 != 0;
        let payload_type = buf[1] & 0x7F;
        let sequence = u16::from_be_bytes([buf[2], buf[3]]);
        let timestamp = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = Ssrc(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));

        let csrc_end = HEADER_LEN + 4 * csrc_count;
        let csrc = buf.get(HEADER_LEN..csrc_end).ok_or(Error::Truncated {
            what: "CSRC list",
            needed: csrc_end,
            len: buf.len(),
        })?;
        let mut start = csrc_end;
        if extension {
            let ext = buf.get(start..start + 4).ok_or(Error::Truncated {
                what: "header extension",
                needed: start + 4,
                len: buf.len(),
            })?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
            if start > buf.len() {
                return Err(Error::Truncated {
                    what: "header extension",
                    needed: start,
                    len: buf.len(),
                });
            }
        }
        let mut end = buf.len();
        if padding {
            // The last octet counts the padding, itself included (§5.1 "padding").
            let count = usize::from(buf[end - 1]);
            if count == 0 || count > end - start {
                return Err(Error::Malformed("padding count"));
            }
            end -= count;
        }
        Ok(RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc,
            payload: &buf[start..end],
        })
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|w| Ssrc(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
    }

    /// Appends the packet to `out`: fixed header, CSRC list, payload; no padding or extension.
    pub fn write(&self, out: &mut Vec<u8>) {
        // At most 15 CSRCs fit the 4-bit count; `parse` and `new` cannot make more.
        let count = (self.csrc.len() / 4).min(15);
        out.reserve(HEADER_LEN + 4 * count + self.payload.len());
        out.push(0x80 | count as u8);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.0.to_be_bytes());
        out.extend_from_slice(&self.csrc[..4 * count]);
        out.extend_from_slice(self.payload);
    }

    /// The packet as a new datagram.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(first: u8, second: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![
            first, second, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xDE, 0xAD, 0xBE, 0xEF,
        ];
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn written_packet_parses_back_field_for_field() {
        let payload = [1u8, 2, 3, 4];
        let pkt = RtpPacket::new(8, 65535, u32::MAX, Ssrc(42), &payload).with_marker(true);
        let bytes = pkt.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 4);
        assert_eq!(bytes[0], 0x80);
        assert_eq!(bytes[1], 0x88);
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), pkt);
    }

    #[test]
    fn header_fields_are_read_from_their_bit_positions() {
        let bytes = wire(0x80, 0x00, &[0xFF; 160]);
        let pkt = RtpPacket::parse(&bytes).unwrap();
        assert!(!pkt.marker);
        assert_eq!(pkt.payload_type, 0);
        assert_eq!(pkt.sequence, 0x1234);
        assert_eq!(pkt.timestamp, 320);
        assert_eq!(pkt.ssrc, Ssrc(0xDEAD_BEEF));
        assert_eq!(pkt.payload.len(), 160);
    }

    #[test]
    fn csrc_list_is_exposed_and_rewritten() {
        let bytes = wire(0x82, 0x00, &[0, 0, 0, 1, 0, 0, 0, 2, 0xAA]);
        let pkt = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(pkt.csrcs().collect::<Vec<_>>(), vec![Ssrc(1), Ssrc(2)]);
        assert_eq!(pkt.payload, &[0xAA]);
        assert_eq!(pkt.to_bytes(), bytes);
    }

    #[test]
    fn padding_is_stripped() {
        let bytes = wire(0xA0, 0x00, &[7, 7, 7, 0, 0, 3]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, &[7, 7, 7]);
    }

    #[test]
    fn padding_longer_than_the_packet_is_rejected() {
        let bytes = wire(0xA0, 0x00, &[7, 9]);
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(Error::Malformed("padding count"))
        );
        let zero = wire(0xA0, 0x00, &[7, 0]);
        assert!(RtpPacket::parse(&zero).is_err());
    }

    #[test]
    fn header_extension_is_skipped() {
        // Profile 0xBEDE, one word of extension, then the payload.
        let bytes = wire(0x90, 0x00, &[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 0x55]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, &[0x55]);
        let short = wire(0x90, 0x00, &[0xBE, 0xDE, 0, 2, 1, 2, 3, 4]);
        assert!(matches!(
            RtpPacket::parse(&short),
            Err(Error::Truncated {
                what: "header extension",
                ..
            })
        ));
    }

    #[test]
    fn wrong_version_and_short_packets_are_errors() {
        assert_eq!(
            RtpPacket::parse(&wire(0x40, 0, &[])),
            Err(Error::Version(1))
        );
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(Error::Truncated { needed: 12, .. })
        ));
        assert!(RtpPacket::parse(&wire(0x8F, 0, &[0; 8])).is_err());
    }

    #[test]
    fn every_prefix_of_a_packet_parses_or_errs() {
        let bytes = wire(
            0xB1,
            0x80,
            &[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 0, 0, 0, 1, 9, 2],
        );
        for len in 0..=bytes.len() {
            let _ = RtpPacket::parse(&bytes[..len]);
        }
    }
}
