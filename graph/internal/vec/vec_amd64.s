//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA kernels over n values, n a multiple of 8 (the Go side does the
// rest). Operand order is Go's: the destination last, and for VMINPS and
// VMAXPS the value whose NaN must win first (x86 returns the second
// source, Go's first operand, when either is NaN).
//
// Constants, each replicated 8 times (32 bytes) so it can be a memory
// operand of a vector instruction; the values and their meaning are in
// generic.go.
#define Kone vc<>+0(SB)
#define Khalf vc<>+32(SB)
#define Ktwo vc<>+64(SB)
#define Kabsmask vc<>+96(SB)
#define Ksignmask vc<>+128(SB)
#define Kbias vc<>+160(SB)
#define KexpHi vc<>+192(SB)
#define KexpLo vc<>+224(SB)
#define Klog2e vc<>+256(SB)
#define Kmagic vc<>+288(SB)
#define Kln2hi vc<>+320(SB)
#define Kln2lo vc<>+352(SB)
#define Ke2 vc<>+384(SB)
#define Ke3 vc<>+416(SB)
#define Ke4 vc<>+448(SB)
#define Ke5 vc<>+480(SB)
#define Ke6 vc<>+512(SB)
#define Knegmax vc<>+544(SB)
#define KtanhThr vc<>+576(SB)
#define Kt0 vc<>+608(SB)
#define Kt1 vc<>+640(SB)
#define Kt2 vc<>+672(SB)
#define Kt3 vc<>+704(SB)
#define Kt4 vc<>+736(SB)
#define KerfThr vc<>+768(SB)
#define KerfMax vc<>+800(SB)
#define KerfMid vc<>+832(SB)
#define Kp0 vc<>+864(SB)
#define Kp1 vc<>+896(SB)
#define Kp2 vc<>+928(SB)
#define Kp3 vc<>+960(SB)
#define Kp4 vc<>+992(SB)
#define Kp5 vc<>+1024(SB)
#define Kp6 vc<>+1056(SB)
#define Kr0 vc<>+1088(SB)
#define Kr1 vc<>+1120(SB)
#define Kr2 vc<>+1152(SB)
#define Kr3 vc<>+1184(SB)
#define Kr4 vc<>+1216(SB)
#define Kr5 vc<>+1248(SB)
#define Kr6 vc<>+1280(SB)
#define Kr7 vc<>+1312(SB)

DATA vc<>+0(SB)/4, $0x3f800000
DATA vc<>+4(SB)/4, $0x3f800000
DATA vc<>+8(SB)/4, $0x3f800000
DATA vc<>+12(SB)/4, $0x3f800000
DATA vc<>+16(SB)/4, $0x3f800000
DATA vc<>+20(SB)/4, $0x3f800000
DATA vc<>+24(SB)/4, $0x3f800000
DATA vc<>+28(SB)/4, $0x3f800000
DATA vc<>+32(SB)/4, $0x3f000000
DATA vc<>+36(SB)/4, $0x3f000000
DATA vc<>+40(SB)/4, $0x3f000000
DATA vc<>+44(SB)/4, $0x3f000000
DATA vc<>+48(SB)/4, $0x3f000000
DATA vc<>+52(SB)/4, $0x3f000000
DATA vc<>+56(SB)/4, $0x3f000000
DATA vc<>+60(SB)/4, $0x3f000000
DATA vc<>+64(SB)/4, $0x40000000
DATA vc<>+68(SB)/4, $0x40000000
DATA vc<>+72(SB)/4, $0x40000000
DATA vc<>+76(SB)/4, $0x40000000
DATA vc<>+80(SB)/4, $0x40000000
DATA vc<>+84(SB)/4, $0x40000000
DATA vc<>+88(SB)/4, $0x40000000
DATA vc<>+92(SB)/4, $0x40000000
DATA vc<>+96(SB)/4, $0x7fffffff
DATA vc<>+100(SB)/4, $0x7fffffff
DATA vc<>+104(SB)/4, $0x7fffffff
DATA vc<>+108(SB)/4, $0x7fffffff
DATA vc<>+112(SB)/4, $0x7fffffff
DATA vc<>+116(SB)/4, $0x7fffffff
DATA vc<>+120(SB)/4, $0x7fffffff
DATA vc<>+124(SB)/4, $0x7fffffff
DATA vc<>+128(SB)/4, $0x80000000
DATA vc<>+132(SB)/4, $0x80000000
DATA vc<>+136(SB)/4, $0x80000000
DATA vc<>+140(SB)/4, $0x80000000
DATA vc<>+144(SB)/4, $0x80000000
DATA vc<>+148(SB)/4, $0x80000000
DATA vc<>+152(SB)/4, $0x80000000
DATA vc<>+156(SB)/4, $0x80000000
DATA vc<>+160(SB)/4, $0x0000007f
DATA vc<>+164(SB)/4, $0x0000007f
DATA vc<>+168(SB)/4, $0x0000007f
DATA vc<>+172(SB)/4, $0x0000007f
DATA vc<>+176(SB)/4, $0x0000007f
DATA vc<>+180(SB)/4, $0x0000007f
DATA vc<>+184(SB)/4, $0x0000007f
DATA vc<>+188(SB)/4, $0x0000007f
DATA vc<>+192(SB)/4, $0x42b20000
DATA vc<>+196(SB)/4, $0x42b20000
DATA vc<>+200(SB)/4, $0x42b20000
DATA vc<>+204(SB)/4, $0x42b20000
DATA vc<>+208(SB)/4, $0x42b20000
DATA vc<>+212(SB)/4, $0x42b20000
DATA vc<>+216(SB)/4, $0x42b20000
DATA vc<>+220(SB)/4, $0x42b20000
DATA vc<>+224(SB)/4, $0xc2d00000
DATA vc<>+228(SB)/4, $0xc2d00000
DATA vc<>+232(SB)/4, $0xc2d00000
DATA vc<>+236(SB)/4, $0xc2d00000
DATA vc<>+240(SB)/4, $0xc2d00000
DATA vc<>+244(SB)/4, $0xc2d00000
DATA vc<>+248(SB)/4, $0xc2d00000
DATA vc<>+252(SB)/4, $0xc2d00000
DATA vc<>+256(SB)/4, $0x3fb8aa3b
DATA vc<>+260(SB)/4, $0x3fb8aa3b
DATA vc<>+264(SB)/4, $0x3fb8aa3b
DATA vc<>+268(SB)/4, $0x3fb8aa3b
DATA vc<>+272(SB)/4, $0x3fb8aa3b
DATA vc<>+276(SB)/4, $0x3fb8aa3b
DATA vc<>+280(SB)/4, $0x3fb8aa3b
DATA vc<>+284(SB)/4, $0x3fb8aa3b
DATA vc<>+288(SB)/4, $0x4b400000
DATA vc<>+292(SB)/4, $0x4b400000
DATA vc<>+296(SB)/4, $0x4b400000
DATA vc<>+300(SB)/4, $0x4b400000
DATA vc<>+304(SB)/4, $0x4b400000
DATA vc<>+308(SB)/4, $0x4b400000
DATA vc<>+312(SB)/4, $0x4b400000
DATA vc<>+316(SB)/4, $0x4b400000
DATA vc<>+320(SB)/4, $0x3f318000
DATA vc<>+324(SB)/4, $0x3f318000
DATA vc<>+328(SB)/4, $0x3f318000
DATA vc<>+332(SB)/4, $0x3f318000
DATA vc<>+336(SB)/4, $0x3f318000
DATA vc<>+340(SB)/4, $0x3f318000
DATA vc<>+344(SB)/4, $0x3f318000
DATA vc<>+348(SB)/4, $0x3f318000
DATA vc<>+352(SB)/4, $0xb95e8083
DATA vc<>+356(SB)/4, $0xb95e8083
DATA vc<>+360(SB)/4, $0xb95e8083
DATA vc<>+364(SB)/4, $0xb95e8083
DATA vc<>+368(SB)/4, $0xb95e8083
DATA vc<>+372(SB)/4, $0xb95e8083
DATA vc<>+376(SB)/4, $0xb95e8083
DATA vc<>+380(SB)/4, $0xb95e8083
DATA vc<>+384(SB)/4, $0x3efffffe
DATA vc<>+388(SB)/4, $0x3efffffe
DATA vc<>+392(SB)/4, $0x3efffffe
DATA vc<>+396(SB)/4, $0x3efffffe
DATA vc<>+400(SB)/4, $0x3efffffe
DATA vc<>+404(SB)/4, $0x3efffffe
DATA vc<>+408(SB)/4, $0x3efffffe
DATA vc<>+412(SB)/4, $0x3efffffe
DATA vc<>+416(SB)/4, $0x3e2aaa49
DATA vc<>+420(SB)/4, $0x3e2aaa49
DATA vc<>+424(SB)/4, $0x3e2aaa49
DATA vc<>+428(SB)/4, $0x3e2aaa49
DATA vc<>+432(SB)/4, $0x3e2aaa49
DATA vc<>+436(SB)/4, $0x3e2aaa49
DATA vc<>+440(SB)/4, $0x3e2aaa49
DATA vc<>+444(SB)/4, $0x3e2aaa49
DATA vc<>+448(SB)/4, $0x3d2aac79
DATA vc<>+452(SB)/4, $0x3d2aac79
DATA vc<>+456(SB)/4, $0x3d2aac79
DATA vc<>+460(SB)/4, $0x3d2aac79
DATA vc<>+464(SB)/4, $0x3d2aac79
DATA vc<>+468(SB)/4, $0x3d2aac79
DATA vc<>+472(SB)/4, $0x3d2aac79
DATA vc<>+476(SB)/4, $0x3d2aac79
DATA vc<>+480(SB)/4, $0x3c091cea
DATA vc<>+484(SB)/4, $0x3c091cea
DATA vc<>+488(SB)/4, $0x3c091cea
DATA vc<>+492(SB)/4, $0x3c091cea
DATA vc<>+496(SB)/4, $0x3c091cea
DATA vc<>+500(SB)/4, $0x3c091cea
DATA vc<>+504(SB)/4, $0x3c091cea
DATA vc<>+508(SB)/4, $0x3c091cea
DATA vc<>+512(SB)/4, $0x3ab51224
DATA vc<>+516(SB)/4, $0x3ab51224
DATA vc<>+520(SB)/4, $0x3ab51224
DATA vc<>+524(SB)/4, $0x3ab51224
DATA vc<>+528(SB)/4, $0x3ab51224
DATA vc<>+532(SB)/4, $0x3ab51224
DATA vc<>+536(SB)/4, $0x3ab51224
DATA vc<>+540(SB)/4, $0x3ab51224
DATA vc<>+544(SB)/4, $0xff7fffff
DATA vc<>+548(SB)/4, $0xff7fffff
DATA vc<>+552(SB)/4, $0xff7fffff
DATA vc<>+556(SB)/4, $0xff7fffff
DATA vc<>+560(SB)/4, $0xff7fffff
DATA vc<>+564(SB)/4, $0xff7fffff
DATA vc<>+568(SB)/4, $0xff7fffff
DATA vc<>+572(SB)/4, $0xff7fffff
DATA vc<>+576(SB)/4, $0x3f200000
DATA vc<>+580(SB)/4, $0x3f200000
DATA vc<>+584(SB)/4, $0x3f200000
DATA vc<>+588(SB)/4, $0x3f200000
DATA vc<>+592(SB)/4, $0x3f200000
DATA vc<>+596(SB)/4, $0x3f200000
DATA vc<>+600(SB)/4, $0x3f200000
DATA vc<>+604(SB)/4, $0x3f200000
DATA vc<>+608(SB)/4, $0xbeaaaa99
DATA vc<>+612(SB)/4, $0xbeaaaa99
DATA vc<>+616(SB)/4, $0xbeaaaa99
DATA vc<>+620(SB)/4, $0xbeaaaa99
DATA vc<>+624(SB)/4, $0xbeaaaa99
DATA vc<>+628(SB)/4, $0xbeaaaa99
DATA vc<>+632(SB)/4, $0xbeaaaa99
DATA vc<>+636(SB)/4, $0xbeaaaa99
DATA vc<>+640(SB)/4, $0x3e088393
DATA vc<>+644(SB)/4, $0x3e088393
DATA vc<>+648(SB)/4, $0x3e088393
DATA vc<>+652(SB)/4, $0x3e088393
DATA vc<>+656(SB)/4, $0x3e088393
DATA vc<>+660(SB)/4, $0x3e088393
DATA vc<>+664(SB)/4, $0x3e088393
DATA vc<>+668(SB)/4, $0x3e088393
DATA vc<>+672(SB)/4, $0xbd5c1e2d
DATA vc<>+676(SB)/4, $0xbd5c1e2d
DATA vc<>+680(SB)/4, $0xbd5c1e2d
DATA vc<>+684(SB)/4, $0xbd5c1e2d
DATA vc<>+688(SB)/4, $0xbd5c1e2d
DATA vc<>+692(SB)/4, $0xbd5c1e2d
DATA vc<>+696(SB)/4, $0xbd5c1e2d
DATA vc<>+700(SB)/4, $0xbd5c1e2d
DATA vc<>+704(SB)/4, $0x3ca9134f
DATA vc<>+708(SB)/4, $0x3ca9134f
DATA vc<>+712(SB)/4, $0x3ca9134f
DATA vc<>+716(SB)/4, $0x3ca9134f
DATA vc<>+720(SB)/4, $0x3ca9134f
DATA vc<>+724(SB)/4, $0x3ca9134f
DATA vc<>+728(SB)/4, $0x3ca9134f
DATA vc<>+732(SB)/4, $0x3ca9134f
DATA vc<>+736(SB)/4, $0xbbbaf0ee
DATA vc<>+740(SB)/4, $0xbbbaf0ee
DATA vc<>+744(SB)/4, $0xbbbaf0ee
DATA vc<>+748(SB)/4, $0xbbbaf0ee
DATA vc<>+752(SB)/4, $0xbbbaf0ee
DATA vc<>+756(SB)/4, $0xbbbaf0ee
DATA vc<>+760(SB)/4, $0xbbbaf0ee
DATA vc<>+764(SB)/4, $0xbbbaf0ee
DATA vc<>+768(SB)/4, $0x3f800000
DATA vc<>+772(SB)/4, $0x3f800000
DATA vc<>+776(SB)/4, $0x3f800000
DATA vc<>+780(SB)/4, $0x3f800000
DATA vc<>+784(SB)/4, $0x3f800000
DATA vc<>+788(SB)/4, $0x3f800000
DATA vc<>+792(SB)/4, $0x3f800000
DATA vc<>+796(SB)/4, $0x3f800000
DATA vc<>+800(SB)/4, $0x40800000
DATA vc<>+804(SB)/4, $0x40800000
DATA vc<>+808(SB)/4, $0x40800000
DATA vc<>+812(SB)/4, $0x40800000
DATA vc<>+816(SB)/4, $0x40800000
DATA vc<>+820(SB)/4, $0x40800000
DATA vc<>+824(SB)/4, $0x40800000
DATA vc<>+828(SB)/4, $0x40800000
DATA vc<>+832(SB)/4, $0x40200000
DATA vc<>+836(SB)/4, $0x40200000
DATA vc<>+840(SB)/4, $0x40200000
DATA vc<>+844(SB)/4, $0x40200000
DATA vc<>+848(SB)/4, $0x40200000
DATA vc<>+852(SB)/4, $0x40200000
DATA vc<>+856(SB)/4, $0x40200000
DATA vc<>+860(SB)/4, $0x40200000
DATA vc<>+864(SB)/4, $0x3f906eba
DATA vc<>+868(SB)/4, $0x3f906eba
DATA vc<>+872(SB)/4, $0x3f906eba
DATA vc<>+876(SB)/4, $0x3f906eba
DATA vc<>+880(SB)/4, $0x3f906eba
DATA vc<>+884(SB)/4, $0x3f906eba
DATA vc<>+888(SB)/4, $0x3f906eba
DATA vc<>+892(SB)/4, $0x3f906eba
DATA vc<>+896(SB)/4, $0xbec0939f
DATA vc<>+900(SB)/4, $0xbec0939f
DATA vc<>+904(SB)/4, $0xbec0939f
DATA vc<>+908(SB)/4, $0xbec0939f
DATA vc<>+912(SB)/4, $0xbec0939f
DATA vc<>+916(SB)/4, $0xbec0939f
DATA vc<>+920(SB)/4, $0xbec0939f
DATA vc<>+924(SB)/4, $0xbec0939f
DATA vc<>+928(SB)/4, $0x3de7167c
DATA vc<>+932(SB)/4, $0x3de7167c
DATA vc<>+936(SB)/4, $0x3de7167c
DATA vc<>+940(SB)/4, $0x3de7167c
DATA vc<>+944(SB)/4, $0x3de7167c
DATA vc<>+948(SB)/4, $0x3de7167c
DATA vc<>+952(SB)/4, $0x3de7167c
DATA vc<>+956(SB)/4, $0x3de7167c
DATA vc<>+960(SB)/4, $0xbcdbfc89
DATA vc<>+964(SB)/4, $0xbcdbfc89
DATA vc<>+968(SB)/4, $0xbcdbfc89
DATA vc<>+972(SB)/4, $0xbcdbfc89
DATA vc<>+976(SB)/4, $0xbcdbfc89
DATA vc<>+980(SB)/4, $0xbcdbfc89
DATA vc<>+984(SB)/4, $0xbcdbfc89
DATA vc<>+988(SB)/4, $0xbcdbfc89
DATA vc<>+992(SB)/4, $0x3baa02e8
DATA vc<>+996(SB)/4, $0x3baa02e8
DATA vc<>+1000(SB)/4, $0x3baa02e8
DATA vc<>+1004(SB)/4, $0x3baa02e8
DATA vc<>+1008(SB)/4, $0x3baa02e8
DATA vc<>+1012(SB)/4, $0x3baa02e8
DATA vc<>+1016(SB)/4, $0x3baa02e8
DATA vc<>+1020(SB)/4, $0x3baa02e8
DATA vc<>+1024(SB)/4, $0xba51fbdd
DATA vc<>+1028(SB)/4, $0xba51fbdd
DATA vc<>+1032(SB)/4, $0xba51fbdd
DATA vc<>+1036(SB)/4, $0xba51fbdd
DATA vc<>+1040(SB)/4, $0xba51fbdd
DATA vc<>+1044(SB)/4, $0xba51fbdd
DATA vc<>+1048(SB)/4, $0xba51fbdd
DATA vc<>+1052(SB)/4, $0xba51fbdd
DATA vc<>+1056(SB)/4, $0x38a4b5fc
DATA vc<>+1060(SB)/4, $0x38a4b5fc
DATA vc<>+1064(SB)/4, $0x38a4b5fc
DATA vc<>+1068(SB)/4, $0x38a4b5fc
DATA vc<>+1072(SB)/4, $0x38a4b5fc
DATA vc<>+1076(SB)/4, $0x38a4b5fc
DATA vc<>+1080(SB)/4, $0x38a4b5fc
DATA vc<>+1084(SB)/4, $0x38a4b5fc
DATA vc<>+1088(SB)/4, $0x3e57ddbe
DATA vc<>+1092(SB)/4, $0x3e57ddbe
DATA vc<>+1096(SB)/4, $0x3e57ddbe
DATA vc<>+1100(SB)/4, $0x3e57ddbe
DATA vc<>+1104(SB)/4, $0x3e57ddbe
DATA vc<>+1108(SB)/4, $0x3e57ddbe
DATA vc<>+1112(SB)/4, $0x3e57ddbe
DATA vc<>+1116(SB)/4, $0x3e57ddbe
DATA vc<>+1120(SB)/4, $0xbd9828c3
DATA vc<>+1124(SB)/4, $0xbd9828c3
DATA vc<>+1128(SB)/4, $0xbd9828c3
DATA vc<>+1132(SB)/4, $0xbd9828c3
DATA vc<>+1136(SB)/4, $0xbd9828c3
DATA vc<>+1140(SB)/4, $0xbd9828c3
DATA vc<>+1144(SB)/4, $0xbd9828c3
DATA vc<>+1148(SB)/4, $0xbd9828c3
DATA vc<>+1152(SB)/4, $0x3cce260a
DATA vc<>+1156(SB)/4, $0x3cce260a
DATA vc<>+1160(SB)/4, $0x3cce260a
DATA vc<>+1164(SB)/4, $0x3cce260a
DATA vc<>+1168(SB)/4, $0x3cce260a
DATA vc<>+1172(SB)/4, $0x3cce260a
DATA vc<>+1176(SB)/4, $0x3cce260a
DATA vc<>+1180(SB)/4, $0x3cce260a
DATA vc<>+1184(SB)/4, $0xbbfff8c6
DATA vc<>+1188(SB)/4, $0xbbfff8c6
DATA vc<>+1192(SB)/4, $0xbbfff8c6
DATA vc<>+1196(SB)/4, $0xbbfff8c6
DATA vc<>+1200(SB)/4, $0xbbfff8c6
DATA vc<>+1204(SB)/4, $0xbbfff8c6
DATA vc<>+1208(SB)/4, $0xbbfff8c6
DATA vc<>+1212(SB)/4, $0xbbfff8c6
DATA vc<>+1216(SB)/4, $0x3afc9954
DATA vc<>+1220(SB)/4, $0x3afc9954
DATA vc<>+1224(SB)/4, $0x3afc9954
DATA vc<>+1228(SB)/4, $0x3afc9954
DATA vc<>+1232(SB)/4, $0x3afc9954
DATA vc<>+1236(SB)/4, $0x3afc9954
DATA vc<>+1240(SB)/4, $0x3afc9954
DATA vc<>+1244(SB)/4, $0x3afc9954
DATA vc<>+1248(SB)/4, $0xbb03bf95
DATA vc<>+1252(SB)/4, $0xbb03bf95
DATA vc<>+1256(SB)/4, $0xbb03bf95
DATA vc<>+1260(SB)/4, $0xbb03bf95
DATA vc<>+1264(SB)/4, $0xbb03bf95
DATA vc<>+1268(SB)/4, $0xbb03bf95
DATA vc<>+1272(SB)/4, $0xbb03bf95
DATA vc<>+1276(SB)/4, $0xbb03bf95
DATA vc<>+1280(SB)/4, $0xba58676d
DATA vc<>+1284(SB)/4, $0xba58676d
DATA vc<>+1288(SB)/4, $0xba58676d
DATA vc<>+1292(SB)/4, $0xba58676d
DATA vc<>+1296(SB)/4, $0xba58676d
DATA vc<>+1300(SB)/4, $0xba58676d
DATA vc<>+1304(SB)/4, $0xba58676d
DATA vc<>+1308(SB)/4, $0xba58676d
DATA vc<>+1312(SB)/4, $0xb9ce7556
DATA vc<>+1316(SB)/4, $0xb9ce7556
DATA vc<>+1320(SB)/4, $0xb9ce7556
DATA vc<>+1324(SB)/4, $0xb9ce7556
DATA vc<>+1328(SB)/4, $0xb9ce7556
DATA vc<>+1332(SB)/4, $0xb9ce7556
DATA vc<>+1336(SB)/4, $0xb9ce7556
DATA vc<>+1340(SB)/4, $0xb9ce7556
GLOBL vc<>(SB), RODATA|NOPTR, $1344

// EXP computes e^Y0 into Y0, clobbering Y1-Y3 (see exp32 in generic.go).
#define EXP \
	VMOVUPS KexpHi, Y1; \
	VMINPS Y0, Y1, Y0; \
	VMOVUPS KexpLo, Y1; \
	VMAXPS Y0, Y1, Y0; \
	VMOVUPS Klog2e, Y1; \
	VMOVUPS Kmagic, Y2; \
	VFMADD213PS Y2, Y0, Y1; \
	VSUBPS Y2, Y1, Y2; \
	VFNMADD231PS Kln2hi, Y2, Y0; \
	VFNMADD231PS Kln2lo, Y2, Y0; \
	VMOVUPS Ke6, Y3; \
	VFMADD213PS Ke5, Y0, Y3; \
	VFMADD213PS Ke4, Y0, Y3; \
	VFMADD213PS Ke3, Y0, Y3; \
	VFMADD213PS Ke2, Y0, Y3; \
	VMULPS Y0, Y0, Y2; \
	VFMADD213PS Y0, Y2, Y3; \
	VADDPS Kone, Y3, Y3; \
	VPSUBD Kmagic, Y1, Y1; \
	VPSRAD $1, Y1, Y2; \
	VPSUBD Y2, Y1, Y1; \
	VPADDD Kbias, Y2, Y2; \
	VPSLLD $23, Y2, Y2; \
	VPADDD Kbias, Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VMULPS Y2, Y3, Y3; \
	VMULPS Y1, Y3, Y0


// SIGMOID: Y0 = sigmoid(Y0), clobbering Y1-Y5: e = exp(-|x|), then
// 1/(1+e) for x >= 0 and e/(1+e) for x < 0 (blend on x's sign bit).
#define SIGMOID \
	VMOVAPS Y0, Y4; \
	VORPS Ksignmask, Y0, Y0; \
	EXP; \
	VMOVUPS Kone, Y5; \
	VBLENDVPS Y4, Y0, Y5, Y1; \
	VADDPS Y5, Y0, Y0; \
	VDIVPS Y0, Y1, Y0

// SILU: Y0 = max(x, -MaxFloat32)·sigmoid(x), clobbering Y1-Y6.
#define SILU \
	VMOVUPS Knegmax, Y6; \
	VMAXPS Y0, Y6, Y6; \
	SIGMOID; \
	VMULPS Y6, Y0, Y0

// TANH: Y0 = tanh(Y0), clobbering Y1-Y7: with a = |x|, the polynomial
// a + a·z·Q(z), z = a², for a < 0.625, else 1 - 2/(e^2a + 1); then x's
// sign.
#define TANH \
	VANDPS Ksignmask, Y0, Y4; \
	VANDPS Kabsmask, Y0, Y7; \
	VMULPS Y7, Y7, Y5; \
	VMOVUPS Kt4, Y6; \
	VFMADD213PS Kt3, Y5, Y6; \
	VFMADD213PS Kt2, Y5, Y6; \
	VFMADD213PS Kt1, Y5, Y6; \
	VFMADD213PS Kt0, Y5, Y6; \
	VMULPS Y5, Y6, Y6; \
	VFMADD213PS Y7, Y7, Y6; \
	VADDPS Y7, Y7, Y0; \
	EXP; \
	VADDPS Kone, Y0, Y0; \
	VMOVUPS Ktwo, Y1; \
	VDIVPS Y0, Y1, Y1; \
	VMOVUPS Kone, Y0; \
	VSUBPS Y1, Y0, Y0; \
	VCMPPS $0x11, KtanhThr, Y7, Y7; \
	VBLENDVPS Y7, Y6, Y0, Y0; \
	VORPS Y4, Y0, Y0

// ERF: Y0 = erf(Y0), clobbering Y1-Y8: with a = |x|, a·P(a²) for a < 1,
// else 1 - e^(-c²)·R(c-2.5) with c = min(a, 4); then x's sign.
#define ERF \
	VANDPS Ksignmask, Y0, Y4; \
	VANDPS Kabsmask, Y0, Y7; \
	VMULPS Y7, Y7, Y5; \
	VMOVUPS Kp6, Y6; \
	VFMADD213PS Kp5, Y5, Y6; \
	VFMADD213PS Kp4, Y5, Y6; \
	VFMADD213PS Kp3, Y5, Y6; \
	VFMADD213PS Kp2, Y5, Y6; \
	VFMADD213PS Kp1, Y5, Y6; \
	VFMADD213PS Kp0, Y5, Y6; \
	VMULPS Y7, Y6, Y6; \
	VMOVUPS KerfMax, Y1; \
	VMINPS Y7, Y1, Y5; \
	VSUBPS KerfMid, Y5, Y1; \
	VMOVUPS Kr7, Y8; \
	VFMADD213PS Kr6, Y1, Y8; \
	VFMADD213PS Kr5, Y1, Y8; \
	VFMADD213PS Kr4, Y1, Y8; \
	VFMADD213PS Kr3, Y1, Y8; \
	VFMADD213PS Kr2, Y1, Y8; \
	VFMADD213PS Kr1, Y1, Y8; \
	VFMADD213PS Kr0, Y1, Y8; \
	VMULPS Y5, Y5, Y0; \
	VXORPS Ksignmask, Y0, Y0; \
	EXP; \
	VFNMADD213PS Kone, Y8, Y0; \
	VCMPPS $0x11, KerfThr, Y7, Y7; \
	VBLENDVPS Y7, Y6, Y0, Y0; \
	VORPS Y4, Y0, Y0


// func expAVX2(dst, x *float32, n int)
// dst = e^x.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	EXP
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func sigmoidAVX2(dst, x *float32, n int)
// dst = 1/(1+e^-x).
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	SIGMOID
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func siluAVX2(dst, x *float32, n int)
// dst = x/(1+e^-x).
TEXT ·siluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	SILU
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func tanhAVX2(dst, x *float32, n int)
// dst = tanh(x).
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	TANH
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func erfAVX2(dst, x *float32, n int)
// dst = erf(x).
TEXT ·erfAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	ERF
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func affineClampAVX2(dst, x *float32, n int, a, b, lo, hi float32)
// dst = min(max(x·a+b, lo), hi); two vectors per step.
TEXT ·affineClampAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y4
	VBROADCASTSS b+28(FP), Y5
	VBROADCASTSS lo+32(FP), Y6
	VBROADCASTSS hi+36(FP), Y7
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-16, DX
	CMPQ AX, DX
	JGE  tail
loop:
	VMOVUPS     (SI)(AX*4), Y0
	VMOVUPS     32(SI)(AX*4), Y1
	VFMADD213PS Y5, Y4, Y0
	VFMADD213PS Y5, Y4, Y1
	VMAXPS      Y0, Y6, Y0
	VMAXPS      Y1, Y6, Y1
	VMINPS      Y0, Y7, Y0
	VMINPS      Y1, Y7, Y1
	VMOVUPS     Y0, (DI)(AX*4)
	VMOVUPS     Y1, 32(DI)(AX*4)
	ADDQ        $16, AX
	CMPQ        AX, DX
	JLT         loop
tail:
	CMPQ AX, CX
	JGE  done
	VMOVUPS     (SI)(AX*4), Y0
	VFMADD213PS Y5, Y4, Y0
	VMAXPS      Y0, Y6, Y0
	VMINPS      Y0, Y7, Y0
	VMOVUPS     Y0, (DI)(AX*4)
done:
	VZEROUPPER
	RET

// func affineClampMulAVX2(dst, x *float32, n int, a, b, lo, hi float32)
// dst = x·min(max(x·a+b, lo), hi).
TEXT ·affineClampMulAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y4
	VBROADCASTSS b+28(FP), Y5
	VBROADCASTSS lo+32(FP), Y6
	VBROADCASTSS hi+36(FP), Y7
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS     (SI)(AX*4), Y0
	VMOVAPS     Y0, Y1
	VFMADD213PS Y5, Y4, Y0
	VMAXPS      Y0, Y6, Y0
	VMINPS      Y0, Y7, Y0
	VMULPS      Y1, Y0, Y0
	VMOVUPS     Y0, (DI)(AX*4)
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         loop
done:
	VZEROUPPER
	RET

// func leakyReluAVX2(dst, x *float32, n int, alpha float32)
// dst = max(x, 0) + alpha·min(x, 0).
TEXT ·leakyReluAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Y4
	VXORPS Y5, Y5, Y5
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS     (SI)(AX*4), Y0
	VMAXPS      Y0, Y5, Y1
	VMINPS      Y0, Y5, Y2
	VFMADD231PS Y4, Y2, Y1
	VMOVUPS     Y1, (DI)(AX*4)
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         loop
done:
	VZEROUPPER
	RET

// func rangeMaskAVX2(dst, x, dy *float32, n int, lo, hi float32)
// dst = dy where lo <= x <= hi, else 0.
TEXT ·rangeMaskAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), BX
	MOVQ n+24(FP), CX
	VBROADCASTSS lo+32(FP), Y4
	VBROADCASTSS hi+36(FP), Y5
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VCMPPS  $0x1d, Y4, Y0, Y1
	VCMPPS  $0x12, Y5, Y0, Y2
	VANDPS  Y2, Y1, Y1
	VANDPS  (BX)(AX*4), Y1, Y1
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b *float32, n int)
// dst = a + b.
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VADDPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func maxAVX2(dst, a, b *float32, n int)
// dst = max(a, b), computed as Go's compiler computes the built-in max on
// amd64, so that the pure Go agrees bit for bit (signed zeros and NaN
// payloads included): m = min(-a, -b), then -(m | min(m, -a)). VMINPS
// returns its second source (Go's first operand) when either value is NaN
// or both are zero, so the OR makes NaN win and +0 beat -0. Two vectors
// per step.
TEXT ·maxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	VMOVUPS Ksignmask, Y8
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-16, DX
	CMPQ AX, DX
	JGE  tail
loop2:
	VXORPS  (SI)(AX*4), Y8, Y0
	VXORPS  (BX)(AX*4), Y8, Y1
	VXORPS  32(SI)(AX*4), Y8, Y4
	VXORPS  32(BX)(AX*4), Y8, Y5
	VMINPS  Y1, Y0, Y2
	VMINPS  Y5, Y4, Y6
	VMINPS  Y0, Y2, Y3
	VMINPS  Y4, Y6, Y7
	VORPS   Y3, Y2, Y2
	VORPS   Y7, Y6, Y6
	VXORPS  Y8, Y2, Y2
	VXORPS  Y8, Y6, Y6
	VMOVUPS Y2, (DI)(AX*4)
	VMOVUPS Y6, 32(DI)(AX*4)
	ADDQ    $16, AX
	CMPQ    AX, DX
	JLT     loop2
tail:
	CMPQ AX, CX
	JGE  done
	VXORPS  (SI)(AX*4), Y8, Y0
	VXORPS  (BX)(AX*4), Y8, Y1
	VMINPS  Y1, Y0, Y2
	VMINPS  Y0, Y2, Y3
	VORPS   Y3, Y2, Y2
	VXORPS  Y8, Y2, Y2
	VMOVUPS Y2, (DI)(AX*4)
done:
	VZEROUPPER
	RET

// MAXFLOOR sets Y2 = max(Y0, floor) as maxAVX2 does, given Y0 = -x,
// Y9 = -floor and Y8 the sign mask; clobbers Y3.
#define MAXFLOOR \
	VMINPS Y9, Y0, Y2 \
	VMINPS Y0, Y2, Y3 \
	VORPS  Y3, Y2, Y2 \
	VXORPS Y8, Y2, Y2

// func maxFloorAVX2(dst, x *float32, n int, floor float32)
// dst = max(x, floor), with maxAVX2's rules.
TEXT ·maxFloorAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS Ksignmask, Y8
	VBROADCASTSS floor+24(FP), Y9
	VXORPS Y8, Y9, Y9
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VXORPS  (SI)(AX*4), Y8, Y0
	MAXFLOOR
	VMOVUPS Y2, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func maxFloorEvenAVX2(dst, x *float32, n int, floor float32)
// dst[i] = max(x[2i], floor), with maxAVX2's rules, reading 2n values:
// VSHUFPS takes the even values of each 128-bit half of two vectors
// (a0 a2 b0 b2 | a4 a6 b4 b6) and VPERMPD puts the 64-bit pairs in order.
TEXT ·maxFloorEvenAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS Ksignmask, Y8
	VBROADCASTSS floor+24(FP), Y9
	VXORPS Y8, Y9, Y9
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSHUFPS $0x88, Y1, Y0, Y0
	VPERMPD $0xd8, Y0, Y0
	VXORPS  Y8, Y0, Y0
	MAXFLOOR
	VMOVUPS Y2, (DI)(AX*4)
	ADDQ    $64, SI
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func subAVX2(dst, a, b *float32, n int)
// dst = a - b.
TEXT ·subAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func mulAVX2(dst, a, b *float32, n int)
// dst = a · b.
TEXT ·mulAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VMULPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func divAVX2(dst, a, b *float32, n int)
// dst = a / b.
TEXT ·divAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VDIVPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func sigmoidGradAVX2(dst, y, dy *float32, n int)
// dst = b·(a·(1-a)): the sigmoid gradient from its output a and dy b.
TEXT ·sigmoidGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ dy+16(FP), BX
	MOVQ n+24(FP), CX
	VMOVUPS Kone, Y4
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS  Y0, Y4, Y1
	VMULPS  Y1, Y0, Y0
	VMULPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET

// func tanhGradAVX2(dst, y, dy *float32, n int)
// dst = b·(1-a²): the tanh gradient from its output a and dy b.
TEXT ·tanhGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ dy+16(FP), BX
	MOVQ n+24(FP), CX
	VMOVUPS Kone, Y4
	XORQ AX, AX
	CMPQ AX, CX
	JGE  done
loop:
	VMOVUPS (SI)(AX*4), Y0
	VFNMADD213PS Y4, Y0, Y0
	VMULPS  (BX)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     loop
done:
	VZEROUPPER
	RET
