import Testing
import VoxChaos

@Suite struct ChaosRateTests {
    @Test func ratesAndIntervalsGiveTheSameInterval() throws {
        #expect(try ChaosRate(parsing: "2").interval == .milliseconds(500))
        #expect(try ChaosRate(parsing: "2/s").interval == .milliseconds(500))
        #expect(try ChaosRate(parsing: "0.5/s").interval == .seconds(2))
        #expect(try ChaosRate(parsing: "30/min").interval == .seconds(2))
        #expect(try ChaosRate(parsing: "500ms").interval == .milliseconds(500))
        #expect(try ChaosRate(parsing: "3s").interval == .seconds(3))
        #expect(try ChaosRate(parsing: "1m").interval == .seconds(60))
        #expect(try ChaosRate(parsing: " 1.5S ").interval == .milliseconds(1500))
    }

    @Test func zeroTurnsItOff() throws {
        #expect(try ChaosRate(parsing: "0") == .off)
        #expect(try ChaosRate(parsing: "0/s") == .off)
        #expect(try ChaosRate(parsing: "0ms") == .off)
        #expect(ChaosRate.off.description == "off")
    }

    @Test func nonsenseAndExtremesAreRefusedWithWhatIsAccepted() {
        for text in ["", "fast", "-1", "2/h", "nan", "1e400", "ms"] {
            #expect(throws: ChaosError.self, "\(text)") { try ChaosRate(parsing: text) }
        }
        do {
            _ = try ChaosRate(parsing: "1000/s")
            Issue.record("1000/s accepted")
        } catch {
            #expect(error.message.contains("at most 100 per second"))
        }
        do {
            _ = try ChaosRate(parsing: "often")
            Issue.record("'often' accepted")
        } catch {
            #expect(error.message.contains("500ms") && error.message.contains("0.5/s"))
        }
    }

    @Test func describesItselfForTheReport() throws {
        #expect(try ChaosRate(parsing: "2").description == "every 500 ms")
        #expect(try ChaosRate(parsing: "1.5s").description == "every 1.5 s")
    }

    @Test func formatsDecimals() {
        #expect(ChaosFormat.decimal(1.25, 1) == "1.3" || ChaosFormat.decimal(1.25, 1) == "1.2")
        #expect(ChaosFormat.decimal(12, 1) == "12.0")
        #expect(ChaosFormat.decimal(0.05, 2) == "0.05")
        #expect(ChaosFormat.decimal(-3.5, 1) == "-3.5")
        #expect(ChaosFormat.decimal(7.6, 0) == "8")
        #expect(ChaosFormat.decimal(.nan, 1) == "-")
    }
}
