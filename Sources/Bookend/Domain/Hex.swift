extension UInt64 {
    private static let lowercaseHexDigits = Array("0123456789abcdef".utf8)
    private static let uppercaseHexDigits = Array("0123456789ABCDEF".utf8)

    /// `prefix`, then this value's sixteen hex digits, zero-padded: what `%016llx` prints (`%016llX`
    /// with `uppercase`). Written by hand, not with `String(format:)`, which goes through Foundation's
    /// formatter: every ETag and every launch's status folder name is one of these (the nonce alone
    /// was 13 % of the insert-and-dispatch transaction's CPU in the latency section's profile).
    func hex16(uppercase: Bool = false, prefix: StaticString = "") -> String {
        let digits = uppercase ? Self.uppercaseHexDigits : Self.lowercaseHexDigits
        return prefix.withUTF8Buffer { head in
            String(unsafeUninitializedCapacity: head.count + 16) { buffer in
                for index in 0..<head.count { buffer[index] = head[index] }
                for index in 0..<16 {
                    buffer[head.count + index] = digits[Int((self >> UInt64(60 - 4 * index)) & 0xF)]
                }
                return head.count + 16
            }
        }
    }
}
