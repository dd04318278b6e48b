import XDPCtlCore
