"""A tiny SSA text builder: each method appends one LLVM instruction over double (or i64, i1) values."""
from __future__ import annotations

import struct


def hex_double(v: float) -> str:
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


INF = float("inf")
NAN = float("nan")


class SSABuilder:
    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.intrinsics: set[str] = set()
        self.tables: set[str] = set()

    # plumbing
    def _t(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def emit(self, rhs: str) -> str:
        t = self._t()
        self.lines.append(f"  {t} = {rhs}")
        return t

    @staticmethod
    def d(a) -> str:
        if isinstance(a, str):
            return a
        return hex_double(a)

    def _intr(self, name: str, ret: str, args: list[tuple[str, str]]) -> str:
        self.intrinsics.add(f"declare {ret} @{name}({', '.join(t for t, _ in args)})")
        return self.emit(f"call {ret} @{name}({', '.join(f'{t} {v}' for t, v in args)})")

    # double arithmetic
    def add(self, a, b): return self.emit(f"fadd double {self.d(a)}, {self.d(b)}")
    def sub(self, a, b): return self.emit(f"fsub double {self.d(a)}, {self.d(b)}")
    def mul(self, a, b): return self.emit(f"fmul double {self.d(a)}, {self.d(b)}")
    def div(self, a, b): return self.emit(f"fdiv double {self.d(a)}, {self.d(b)}")
    def neg(self, a): return self.emit(f"fneg double {self.d(a)}")

    def fma(self, a, b, c):
        return self._intr("llvm.fma.f64", "double", [("double", self.d(a)), ("double", self.d(b)),
                                                    ("double", self.d(c))])

    def _u(self, name, a):
        return self._intr(f"llvm.{name}.f64", "double", [("double", self.d(a))])

    def fabs(self, a): return self._u("fabs", a)
    def floor(self, a): return self._u("floor", a)
    def rint(self, a): return self._u("rint", a)
    def sqrt(self, a): return self._u("sqrt", a)

    def _bin(self, name, a, b):
        return self._intr(f"llvm.{name}.f64", "double", [("double", self.d(a)), ("double", self.d(b))])

    def copysign(self, a, b): return self._bin("copysign", a, b)
    def minnum(self, a, b): return self._bin("minnum", a, b)
    def maxnum(self, a, b): return self._bin("maxnum", a, b)

    def clamp(self, a, lo, hi):
        return self.minnum(self.maxnum(a, lo), hi)

    def fcmp(self, pred, a, b): return self.emit(f"fcmp {pred} double {self.d(a)}, {self.d(b)}")
    def isnan(self, a): return self.fcmp("uno", a, a)

    def sel(self, c, a, b, ty="double"):
        if ty == "double":
            a, b = self.d(a), self.d(b)
        return self.emit(f"select i1 {c}, {ty} {a}, {ty} {b}")

    def and1(self, a, b): return self.emit(f"and i1 {a}, {b}")
    def or1(self, a, b): return self.emit(f"or i1 {a}, {b}")
    def xor1(self, a, b): return self.emit(f"xor i1 {a}, {b}")
    def not1(self, a): return self.emit(f"xor i1 {a}, true")

    # integers (i64)
    def iop(self, op, a, b): return self.emit(f"{op} i64 {a}, {b}")
    def icmp(self, pred, a, b): return self.emit(f"icmp {pred} i64 {a}, {b}")
    def smax(self, a, b): return self._intr("llvm.smax.i64", "i64", [("i64", str(a)), ("i64", str(b))])
    def smin(self, a, b): return self._intr("llvm.smin.i64", "i64", [("i64", str(a)), ("i64", str(b))])
    def bits(self, a): return self.emit(f"bitcast double {self.d(a)} to i64")
    def dbl(self, i): return self.emit(f"bitcast i64 {i} to double")
    def fptosi(self, a): return self.emit(f"fptosi double {self.d(a)} to i64")
    def sitofp(self, i): return self.emit(f"sitofp i64 {i} to double")
    def zext(self, c): return self.emit(f"zext i1 {c} to i64")

    def load(self, table: str, idx) -> str:
        self.tables.add(table)
        p = self.emit(f"getelementptr inbounds double, ptr @{table}, i64 {idx}")
        return self.emit(f"load double, ptr {p}, align 8")

    # composite helpers --------------------------------------------------------------------------------
    def horner(self, x, coeffs):
        """coeffs[0] + x*(coeffs[1] + x*(...))"""
        acc = self.d(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, c)
        return acc

    def two_sum(self, a, b):
        s = self.add(a, b)
        bb = self.sub(s, a)
        err = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, err

    def fast_two_sum(self, a, b):
        """|a| >= |b| (or a == 0)"""
        s = self.add(a, b)
        err = self.sub(b, self.sub(s, a))
        return s, err

    def two_prod(self, a, b):
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))

    def pow2i(self, k):
        """2**k as double for integer (i64) k in [-1022, 1023]."""
        return self.dbl(self.iop("shl", self.iop("add", k, 1023), 52))

    def signbit(self, a):
        return self.icmp("slt", self.bits(a), 0)
