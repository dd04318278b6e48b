import Glibc

public enum AddressFamily: Int, Sendable, Hashable, Comparable {
    case ipv4 = 4, ipv6 = 6
    public var bits: Int { self == .ipv4 ? 32 : 128 }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// An IPv4 or IPv6 address as four host-order 32-bit words (IPv4 uses word 0), the
/// layout of the packet key in xdpctl_abi.h.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let family: AddressFamily
    public let words: [UInt32]

    public init(family: AddressFamily, words: [UInt32]) {
        precondition(words.count == 4)
        self.family = family
        self.words = family == .ipv4 ? [words[0], 0, 0, 0] : words
    }

    /// Parses dotted-quad IPv4 or any RFC 4291 IPv6 text form.
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if !text.utf8.contains(UInt8(ascii: ":")), inet_pton(AF_INET, text, &v4) == 1 {
            self.init(family: .ipv4, words: [UInt32(bigEndian: v4.s_addr), 0, 0, 0])
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            let w = withUnsafeBytes(of: v6) { raw in
                (0..<4).map { UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
            }
            self.init(family: .ipv6, words: w)
        } else {
            return nil
        }
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if family == .ipv4 {
            var a = in_addr(s_addr: words[0].bigEndian)
            inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
        } else {
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { raw in
                for (i, w) in words.enumerated() { raw.storeBytes(of: w.bigEndian, toByteOffset: i * 4, as: UInt32.self) }
            }
            inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address prefix; a bare address is a /32 or /128.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int
    public var family: AddressFamily { address.family }

    public enum ParseError: Error { case syntax, length, hostBits(IPPrefix) }

    public init(address: IPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    public init(_ text: String) throws(ParseError) {
        let slash = text.utf8.firstIndex(of: UInt8(ascii: "/"))
        guard let address = IPAddress(String(text[..<(slash ?? text.endIndex)])) else { throw .syntax }
        var length = address.family.bits
        if let slash {
            let digits = text.utf8[text.utf8.index(after: slash)...]
            guard (1...3).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  let l = Int(Substring(digits)), l <= address.family.bits else { throw .length }
            length = l
        }
        let masked = IPAddress(family: address.family, words: (0..<4).map { address.words[$0] & IPPrefix.mask(word: $0, length: length, family: address.family) })
        guard masked == address else { throw .hostBits(IPPrefix(address: masked, length: length)) }
        self.address = address
        self.length = length
    }

    /// Mask of the prefix within key word `word` (host order).
    public static func mask(word: Int, length: Int, family: AddressFamily) -> UInt32 {
        if family == .ipv4 && word > 0 { return 0 }
        let bits = max(0, min(32, length - word * 32))
        return bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
    }

    /// The inclusive range of key word `word` this prefix covers.
    public func range(word: Int) -> ClosedRange<UInt32> {
        let m = IPPrefix.mask(word: word, length: length, family: family)
        if family == .ipv4 && word > 0 { return 0...0 }
        return address.words[word]...(address.words[word] | ~m)
    }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == family && (0..<4).allSatisfy { range(word: $0).contains(a.words[$0]) }
    }

    public var description: String { "\(address)/\(length)" }
}

/// An inclusive port range; a single port is `p...p`.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public let low: UInt16
    public let high: UInt16
    public init(_ low: UInt16, _ high: UInt16) { self.low = low; self.high = high }
    public func contains(_ port: UInt16) -> Bool { low <= port && port <= high }
    public var description: String { low == high ? "\(low)" : "\(low)-\(high)" }
}

/// An IP protocol as the config names it.
public struct IPProtocol: Sendable, Hashable, CustomStringConvertible {
    public let number: UInt8
    public init(_ number: UInt8) { self.number = number }
    public static let icmp = IPProtocol(1), tcp = IPProtocol(6), udp = IPProtocol(17), icmpv6 = IPProtocol(58)
    static let names: [(String, IPProtocol)] = [("tcp", .tcp), ("udp", .udp), ("icmp", .icmp), ("icmpv6", .icmpv6)]
    /// A config's name for it (tcp, udp, icmp, icmpv6) or its number.
    public init?(name: String) {
        if let named = Self.names.first(where: { $0.0 == name }) { self = named.1 } else if let n = UInt8(name) { self.init(n) } else { return nil }
    }
    public var hasPorts: Bool { self == .tcp || self == .udp }
    public var description: String { Self.names.first { $0.1 == self }?.0 ?? String(number) }
}
