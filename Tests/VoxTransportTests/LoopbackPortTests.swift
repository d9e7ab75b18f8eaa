import Testing
@testable import VoxTransport

@Suite struct LoopbackPortTests {
    @Test func portsAreChosenOutsideTheEphemeralRange() {
        #expect(LoopbackPort.candidates(ephemeral: 32_768...60_999) == 20_000..<32_768)
        #expect(LoopbackPort.candidates(ephemeral: 15_000...60_999) == 10_000..<15_000, "too little room above 20000")
        #expect(LoopbackPort.candidates(ephemeral: 1_024...40_000) == 40_001..<65_536, "nothing left below: above it")
        #expect(LoopbackPort.candidates(ephemeral: 1_024...65_000) == nil, "no 1000 ports clear of it")
    }

    @Test func anUnusedPortIsFreeAndClearOfTheKernelsRange() throws {
        let port = try #require(LoopbackPort.unused())
        #expect(!LoopbackPort.ephemeralRange().contains(port))
        #expect(LoopbackPort.isFree(port))
    }
}
