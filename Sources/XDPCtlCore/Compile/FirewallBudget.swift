import CXDPCtlABI

/// What a firewall may ask of the compiler, checked before any work starts: at most one
/// counter slot per rule (DP_MAX_RULES, one of them the default's), and at most
/// `maxBoxes` match boxes, the src × dst × source-port × destination-port combinations
/// the rules expand to (Boxes.expand). Without the budget a 17 KB file can ask for
/// millions of boxes and take minutes and gigabytes to be refused.
public enum FirewallBudget {
    /// Boxes per interface, all rules together: twice the rule slots, room for every rule
    /// to be a few combinations.
    public static let maxBoxes = 2 * Int(DP_MAX_RULES)

    /// The first problem, with its path below the firewall's (e.g. "rules[3]"); nil when
    /// the firewall fits.
    public static func check(_ firewall: Firewall) -> (path: String, message: String)? {
        let rules = firewall.rules.count
        if rules > Int(DP_MAX_RULES) - 1 {
            return ("rules", "\(rules) rules; expected at most \(Int(DP_MAX_RULES) - 1) per interface (the counter slots, one of them the default's)")
        }
        var total = 1 // the default
        for (i, rule) in firewall.rules.enumerated() {
            let (boxes, factors) = expansion(rule)
            total = min(total + boxes, Int.max / 2)
            guard total > maxBoxes else { continue }
            let what = boxes > maxBoxes / 2 ? "expands to \(boxes) match boxes (\(factors))" : "brings the firewall to \(total) match boxes (this rule: \(factors))"
            return ("rules[\(i)]", "rule \"\(rule.name.prefix(80))\" \(what); expected at most \(maxBoxes) per interface, all rules together: split the rule, or use fewer, wider prefixes and port ranges")
        }
        return nil
    }

    /// How many boxes `rule` expands to, and the product that gives it, in words.
    static func expansion(_ rule: FirewallRule) -> (Int, String) {
        let sports = max(1, rule.srcPorts.count), dports = max(1, rule.dstPorts.count)
        var pairs = 1
        if !rule.src.isEmpty || !rule.dst.isEmpty {
            // Per family, as Boxes.expand: sources and destinations of that family pair up.
            pairs = [AddressFamily.ipv4, .ipv6].reduce(0) { sum, f in
                let s = rule.src.filter { $0.family == f }.count, d = rule.dst.filter { $0.family == f }.count
                if (!rule.src.isEmpty && s == 0) || (!rule.dst.isEmpty && d == 0) { return sum }
                return sum + max(1, s) * max(1, d)
            }
        }
        let factors = "\(max(1, rule.src.count)) sources × \(max(1, rule.dst.count)) destinations × \(sports) source port ranges × \(dports) destination port ranges"
        return (saturating(saturating(pairs, sports), dports), factors)
    }

    /// a × b, or a number far past any budget when that overflows.
    static func saturating(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max / 4 : product
    }
}
