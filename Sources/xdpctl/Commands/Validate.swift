import ArgumentParser
import XDPCtlCore
import XDPCtlKit

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a config file; change nothing.",
        discussion: "Every problem is reported with its JSON path, the value found and the form expected. Rule sets and rate limits are compiled as apply would, so one that does not fit the data plane's tables is an error here too. Settings that are valid but almost surely a mistake are named as warnings.")

    @OptionGroup var config: ConfigFileOption

    func run() throws {
        let text = try config.read()
        let parsed = try report(file: config.file) { () throws(DataplaneError) in
            let parsed = try Dataplane.validate(text)
            let problems = Dataplane.capacityProblems(parsed)
            if !problems.isEmpty { throw .refused(problems) }
            return parsed
        }
        output("\(config.file): valid (\(parsed.interfaces.count) interface\(parsed.interfaces.count == 1 ? "" : "s"))")
        for w in ConfigWarnings.check(parsed) { output("  warning: \(w)") }
    }
}
