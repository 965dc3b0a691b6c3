@testable import API
import Testing

/// Shared Key's canonical query forms take a shortcut when every parameter is named once, in lowercase
/// ASCII, with a value. Whatever the query, the answer must be exactly what the two general forms give.
@Suite struct CanonicalQueryTests {
    @Test func theShortcutAgreesWithTheGeneralFormsOnEveryShape() {
        let names = ["api-version", "timeout", "maxresults", "$select", "timeOut", "Api-Version", "é", "$filter", "a", "b"]
        let values = ["2025-06-01", "30", "", "state eq 'active'", "x,y", "Ü"]
        var generator = SystemRandomNumberGenerator()
        var singleForm = 0
        for _ in 0..<2_000 {
            let count = Int.random(in: 0...5, using: &generator)
            let pairs = (0..<count).map { _ in (name: names.randomElement(using: &generator)!, value: values.randomElement(using: &generator)!) }
            let expected = SharedKeyVerifier.generalQueries(pairs)
            #expect(SharedKeyVerifier.canonicalQueries(pairs) == expected, "\(pairs)")
            if expected.count == 1, pairs.allSatisfy({ !$0.value.isEmpty }) { singleForm += 1 }
        }
        // The draw covers both: queries with one form and ones with repeats, capitals, empty values.
        #expect(singleForm > 100)
        #expect(SharedKeyVerifier.canonicalQueries([("api-version", "2025-06-01"), ("timeout", "30")]) == ["\napi-version:2025-06-01\ntimeout:30"])
        #expect(SharedKeyVerifier.canonicalQueries([("timeOut", "30")]) == ["\ntimeOut:30", "\ntimeout:30"])
    }
}
