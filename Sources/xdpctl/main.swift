import XDPCtlKit
print("hi")
