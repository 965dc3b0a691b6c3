extension UInt64 {
    /// Sixteen lowercase hex digits, zero-padded (what `%016llx` prints). Why not `String(format:)`:
    /// it goes through Foundation's formatter, and every launch names its status folder with one of
    /// these (13 % of the insert-and-dispatch transaction's CPU in the latency section's profile).
    var hex16: String {
        let digits = String(self, radix: 16)
        return digits.count == 16 ? digits : String(repeating: "0", count: 16 - digits.count) + digits
    }
}
